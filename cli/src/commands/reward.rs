//! `lamar reward`: score completions with a reward plugin.

use anyhow::{Result, bail};
use clap::Args;
use lamar_core::formats::{read_utf8, write_atomic};
use lamar_core::reward::{CompletionRow, Reward, Sample, parse_completions, rewards_jsonl};
use lamar_plugins::PluginHost;
use std::path::PathBuf;

/// Score model completions against the gold with a reward plugin (as GRPO training does).
///
/// --input is JSON Lines, one object per completion: {"completion": …, "gold": … (the gold
/// tagged text), "raw_text": … (the document)}, optionally with an "id" that is copied to the
/// output. The scores go to --out as JSON Lines ({"id", "reward"}, input order), written only
/// when every completion was scored; a summary is printed.
#[derive(Args, Debug)]
pub struct RewardArgs {
    /// Reward plugin (`*.wasm`).
    #[arg(long)]
    pub plugin: PathBuf,
    /// Completions, JSON Lines.
    #[arg(long)]
    pub input: PathBuf,
    /// Scores to write, JSON Lines.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub limits: super::plugin::LimitsArgs,
}

/// Runs `lamar reward`.
pub fn run(args: &RewardArgs) -> Result<()> {
    let rows = parse_completions(&read_utf8(&args.input)?, &args.input.display().to_string())?;
    if rows.is_empty() {
        bail!("{}: no completions", args.input.display());
    }
    let host = PluginHost::new(args.limits.limits())?;
    let plugin = host.load_reward(&args.plugin)?;
    let reward: &dyn Reward = &plugin;
    let samples: Vec<Sample> = rows.iter().map(CompletionRow::sample).collect();
    let scores = reward.score(&samples)?;
    if let Some(out) = &args.out {
        write_atomic(out, rewards_jsonl(&rows, &scores).as_bytes())?;
    }
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let (min, max) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    println!(
        "{}: {} completions, mean reward {mean:.4} (min {min:.4}, max {max:.4}){}",
        reward.name(),
        scores.len(),
        args.out
            .as_ref()
            .map(|o| format!(", written to {}", o.display()))
            .unwrap_or_default()
    );
    Ok(())
}
