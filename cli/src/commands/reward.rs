//! `lamar reward`: score completions with a reward plugin.

use anyhow::{Context, Result, bail};
use clap::Args;
use lamar_core::formats::{read_utf8, write_atomic};
use lamar_plugins::{PluginHost, RewardInput};
use serde::Deserialize;
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

/// One input line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Completion {
    #[serde(default)]
    id: Option<serde_json::Value>,
    completion: String,
    gold: String,
    raw_text: String,
}

/// Runs `lamar reward`.
pub fn run(args: &RewardArgs) -> Result<()> {
    let text = read_utf8(&args.input)?;
    let mut rows = Vec::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Completion = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: expected {{\"completion\", \"gold\", \"raw_text\"[, \"id\"]}}",
                args.input.display(),
                k + 1
            )
        })?;
        rows.push(row);
    }
    if rows.is_empty() {
        bail!("{}: no completions", args.input.display());
    }
    let host = PluginHost::new(args.limits.limits())?;
    let plugin = host.load_reward(&args.plugin)?;
    let inputs: Vec<RewardInput> = rows
        .iter()
        .map(|r| RewardInput {
            completion: &r.completion,
            gold: &r.gold,
            raw_text: &r.raw_text,
        })
        .collect();
    let scores = plugin.score(&inputs)?;
    if let Some(out) = &args.out {
        let mut text = String::new();
        for (k, (row, score)) in rows.iter().zip(&scores).enumerate() {
            let id = row.id.clone().unwrap_or_else(|| k.into());
            text.push_str(&serde_json::to_string(
                &serde_json::json!({"id": id, "reward": score}),
            )?);
            text.push('\n');
        }
        write_atomic(out, text.as_bytes())?;
    }
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let (min, max) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    println!(
        "{}: {} completions, mean reward {mean:.4} (min {min:.4}, max {max:.4}){}",
        plugin.info().name,
        scores.len(),
        args.out
            .as_ref()
            .map(|o| format!(", written to {}", o.display()))
            .unwrap_or_default()
    );
    Ok(())
}
