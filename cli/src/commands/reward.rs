//! `lamar reward`: score completions with a built-in reward or a reward plugin.

use anyhow::{Result, bail};
use clap::Args;
use lamar_core::formats::{read_utf8, write_atomic};
use lamar_core::grpo::RewardSource;
use lamar_core::reward::{CompletionRow, Reward, Sample, parse_completions, rewards_jsonl};
use lamar_plugins::PluginHost;
use std::path::PathBuf;

/// Score model completions against the gold (as GRPO training does), with one of LAMAR's
/// rewards or a reward plugin.
///
/// Built-in rewards (`--reward NAME`, with or without the reference's `reward_` prefix), exactly
/// as LAMAR's `utils/rewards.py`: fidelity (how much of the raw text the completion
/// reproduces), fast_token_f1 and exact_match_f1 (the three GRPO trains with), and the unused
/// variants fast_token_precision, exact_match_precision, fast_token_f05, exact_match_f05 and
/// bleu_exact_tags. Only the answer after a completion's last `</think>` counts.
///
/// --input is JSON Lines, one object per completion: {"completion": …, "gold": … (the gold
/// tagged text), "raw_text": … (the document)}, optionally with an "id" that is copied to the
/// output. The scores go to --out as JSON Lines ({"id", "reward"}, input order), written only
/// when every completion was scored; a summary is printed.
#[derive(Args, Debug)]
pub struct RewardArgs {
    /// A built-in reward's name, or a reward plugin (a path ending in `.wasm`).
    #[arg(long, required_unless_present = "plugin", conflicts_with = "plugin")]
    pub reward: Option<String>,
    /// Reward plugin (`*.wasm`); the same as `--reward PATH.wasm`.
    #[arg(long)]
    pub plugin: Option<PathBuf>,
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
    let reward = load_reward(args)?;
    let reward: &dyn Reward = reward.as_ref();
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

/// The reward `--reward` or `--plugin` names.
fn load_reward(args: &RewardArgs) -> Result<Box<dyn Reward>> {
    let source = match (&args.reward, &args.plugin) {
        (_, Some(path)) => RewardSource::Plugin(path.clone()),
        (Some(name), None) => RewardSource::parse(name)?,
        (None, None) => bail!("give --reward NAME or --plugin FILE.wasm"),
    };
    load_source(source, &mut None, &args.limits)
}

/// The reward `source` names: a built-in one, or a plugin loaded in `host` (made with `limits`
/// on first need, then shared by the next plugins).
pub fn load_source(
    source: RewardSource,
    host: &mut Option<PluginHost>,
    limits: &super::plugin::LimitsArgs,
) -> Result<Box<dyn Reward>> {
    Ok(match source {
        RewardSource::Builtin(builtin) => Box::new(builtin),
        RewardSource::Plugin(path) => {
            if host.is_none() {
                *host = Some(PluginHost::new(limits.limits())?);
            }
            let host = host.as_ref().expect("made above");
            Box::new(host.load_reward(&path)?)
        }
    })
}
