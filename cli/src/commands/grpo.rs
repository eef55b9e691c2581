//! `lamar train grpo`: reinforcement learning with verifiable rewards (LAMAR's Model 2).

use super::infer::{DeviceChoice, DtypeChoice, device, dtype};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use lamar_core::formats::rows::read_training_rows;
use lamar_core::grpo::{
    Aggregation, ClipRange, OnRewardError, RewardScale, RewardSpec, WeightedReward,
};
use lamar_core::prompt::TaskPrompt;
use lamar_model::sampling::SamplingParams;
use lamar_model::train::gradients::Backward;
use lamar_model::train::grpo::job::{GrpoJob, GrpoProgress, GrpoSettings};
use lamar_model::train::grpo::report::GrpoStepReport;
use lamar_model::train::grpo::update::UpdateSettings;
use lamar_model::train::job::TrainError;
use lamar_model::train::lora::LoraShape;
use std::path::PathBuf;
use std::time::Instant;

/// What to do when a reward fails.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPluginError {
    /// Stop the run with an error naming the reward; the last checkpoint stays intact.
    Stop,
    /// The reward counts as missing for that group (TRL's None): left out of its advantage.
    Skip,
}

/// How several rewards become one advantage.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregationChoice {
    /// GDPO (LAMAR): each reward normalised within its group, summed with the weights, then
    /// normalised over the batch.
    NormalizeThenSum,
    /// Plain GRPO: the weighted sum, normalised within the group (see --scale).
    SumThenNormalize,
}

/// What --aggregation sum-then-normalize divides by.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleChoice {
    /// The group's standard deviation.
    Group,
    /// The batch's standard deviation.
    Batch,
    /// Nothing (Dr. GRPO).
    None,
}

/// Train Model 2: GRPO with verifiable rewards on top of the DFT model (LAMAR §6.3).
///
/// For each training row, the policy (the frozen model, with Model 1's adapter merged, plus a
/// new small LoRA) samples --generations completions of the row's prompt. The prompt is the
/// DFT training prompt exactly: the task prompt (--prompt-file, or lamar's built-in one) filled
/// with the raw text, rendered by the chat template with thinking off. The reference's GRPO
/// script adds a stray leading quote to it, a defect lamar does not copy: the policy sees what
/// the DFT model was trained on.
///
/// Every completion is scored by every --reward (built in: fidelity, fast_token_f1,
/// exact_match_f1, the default three, and the unused variants; or a reward plugin's .wasm
/// file; NAME=WEIGHT gives a weight). GDPO turns the scores into advantages, DAPO's clipped
/// token-level loss (ε 0.2 / 0.28, summed over the group's completion tokens) gives the
/// gradient, and AdamW (constant learning rate, norm clipped at 0.2) takes one step per
/// prompt. Completions cut at --max-completion before their end of turn count in no loss.
///
/// Written to --out: the adapter in PEFT's format, OUT/metrics.jsonl (one line per step: each
/// reward's mean, loss, gradient norm, completion length, timings), OUT/rollouts.jsonl (every
/// completion with its rewards and advantage; `lamar view` opens it), OUT/rewards.svg and
/// OUT/loss.svg, and a checkpoint every --checkpoint-every steps (--resume continues it,
/// drawing the same completions an uninterrupted run would have).
#[derive(Args, Debug)]
pub struct GrpoArgs {
    /// Model snapshot to start from: Model 1 merged (`lamar export merge`), or the base model
    /// with --adapter.
    #[arg(long)]
    pub model: PathBuf,
    /// Model 1's PEFT adapter, merged into --model in memory.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Training rows (`lamar tag` output: raw_text and the gold tagged copy).
    #[arg(long)]
    pub data: PathBuf,
    /// Folder to write the new adapter, logs, curves and checkpoint into.
    #[arg(long)]
    pub out: PathBuf,
    /// Task prompt with a `{raw_text}` field: the one Model 1 was trained with (default:
    /// lamar's built-in prompt).
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// A reward, NAME[=WEIGHT] or PATH.wasm[=WEIGHT]; repeat for several (default: fidelity,
    /// fast_token_f1 and exact_match_f1, each with weight 1, as LAMAR).
    #[arg(long = "reward", value_name = "REWARD")]
    pub rewards: Vec<String>,
    /// What a failing reward (a plugin that traps, loops, or answers NaN) does.
    #[arg(long, value_enum, default_value_t = OnPluginError::Stop)]
    pub on_plugin_error: OnPluginError,
    /// Completions per prompt (one prompt's group makes one optimiser step).
    #[arg(long, default_value_t = 8)]
    pub generations: usize,
    /// Sampling temperature of the rollouts; the policy trained is the tempered one,
    /// softmax(logits / T), as in TRL.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Min-p of the rollouts (0 keeps every token).
    #[arg(long, default_value_t = 0.1)]
    pub min_p: f64,
    /// Top-p of the rollouts (1 keeps every token).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Seed of the rollouts (each prompt's sampler gets this plus its position in the run).
    #[arg(long, default_value_t = 42)]
    pub sampling_seed: u64,
    /// Longest completion in tokens (the reference: 24,576 − 10,029).
    #[arg(long, default_value_t = 14_547)]
    pub max_completion: usize,
    /// How the rewards become one advantage.
    #[arg(long, value_enum, default_value_t = AggregationChoice::NormalizeThenSum)]
    pub aggregation: AggregationChoice,
    /// The divisor of --aggregation sum-then-normalize.
    #[arg(long, value_enum, default_value_t = ScaleChoice::Group)]
    pub scale: ScaleChoice,
    /// Drop groups whose rewards are all equal (no signal) and go on to the next prompt.
    #[arg(long)]
    pub dynamic_sampling: bool,
    /// Lower clip of the importance ratio (1 − ε).
    #[arg(long, default_value_t = 0.2)]
    pub epsilon: f64,
    /// Upper clip of the importance ratio (1 + ε_high).
    #[arg(long, default_value_t = 0.28)]
    pub epsilon_high: f64,
    /// Weight of a KL penalty against the model without the new adapter (0: none, LAMAR's).
    #[arg(long, default_value_t = 0.0)]
    pub beta: f64,
    /// Let completions cut at --max-completion count in the loss.
    #[arg(long)]
    pub no_mask_truncated: bool,
    /// The new adapter's rank.
    #[arg(long, default_value_t = 2)]
    pub rank: usize,
    /// The new adapter's alpha (scale alpha / rank, no rsLoRA).
    #[arg(long, default_value_t = 2.0)]
    pub alpha: f64,
    /// Constant learning rate.
    #[arg(long, default_value_t = 5e-5)]
    pub lr: f64,
    /// Global gradient norm limit.
    #[arg(long, default_value_t = 0.2)]
    pub max_grad_norm: f64,
    /// Passes over the prompts.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Seed of the new adapter and the prompt order.
    #[arg(long, default_value_t = 3407)]
    pub seed: u64,
    /// Stop after this many optimiser steps (continue later with --resume).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Optimiser steps between checkpoints (OUT/checkpoint; one is also written at the end).
    #[arg(long, default_value_t = 10)]
    pub checkpoint_every: usize,
    /// Continue from OUT/checkpoint (same data, rewards and flags).
    #[arg(long)]
    pub resume: bool,
    /// Where to train: cuda needs a binary built with `--features cuda`.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Precision of the frozen model (auto: bf16 on CUDA, f32 on the CPU).
    #[arg(long, value_enum, default_value_t = DtypeChoice::Auto)]
    pub dtype: DtypeChoice,
    #[command(flatten)]
    pub limits: super::plugin::LimitsArgs,
}

/// The rewards `--reward` names (LAMAR's three when none is given), plugins loaded.
pub fn load_rewards(
    specs: &[String],
    limits: &super::plugin::LimitsArgs,
) -> Result<Vec<WeightedReward>> {
    let specs: Vec<String> = if specs.is_empty() {
        ["fidelity", "fast_token_f1", "exact_match_f1"]
            .map(String::from)
            .to_vec()
    } else {
        specs.to_vec()
    };
    let mut host = None;
    specs
        .iter()
        .map(|text| {
            let spec = RewardSpec::parse(text).with_context(|| format!("--reward {text}"))?;
            Ok(WeightedReward {
                reward: super::reward::load_source(spec.source, &mut host, limits)?,
                weight: spec.weight,
            })
        })
        .collect()
}

/// The progress bar over prompts, with the last step's rewards.
struct Bar {
    bar: Option<ProgressBar>,
    started: Instant,
    tokens: usize,
    out: PathBuf,
}

impl GrpoProgress for Bar {
    fn started(&mut self, prompts: usize, done: usize) {
        if done > 0 {
            println!(
                "resuming after prompt {done} from {}",
                self.out.join("checkpoint").display()
            );
        }
        let bar = crate::progress::bar(prompts, "grpo");
        bar.set_position(done as u64);
        self.bar = Some(bar);
    }

    fn tokens(&mut self, tokens: usize) {
        self.tokens += tokens;
    }

    fn reward_skipped(&mut self, reward: &str, error: &str) {
        let line = format!("warning: reward {reward} counted as missing for a group: {error}");
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn dropped(&mut self, _prompt_id: &str) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn step(&mut self, report: &GrpoStepReport) {
        let rate = self.tokens as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let rewards: Vec<String> = report
            .rewards
            .iter()
            .map(|r| match r.value {
                Some(v) => format!("{} {v:.3}", r.name),
                None => format!("{} –", r.name),
            })
            .collect();
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{} | len {:.0} | loss {:.4} | {rate:.0} tok/s",
                rewards.join(" "),
                report.completion_tokens,
                report.loss
            ));
            bar.inc(1);
        }
    }
}

/// Runs `lamar train grpo`.
pub fn grpo(args: &GrpoArgs) -> Result<()> {
    if args.generations < 2 {
        bail!(
            "--generations {}: a group needs at least 2 completions",
            args.generations
        );
    }
    let prompt = match &args.prompt_file {
        Some(path) => TaskPrompt::from_file(path)?,
        None => TaskPrompt::builtin(),
    };
    let rows = read_training_rows(&args.data)?;
    let rewards = load_rewards(&args.rewards, &args.limits)?;
    let device = device(args.device)?;
    let job = GrpoJob {
        model: args.model.clone(),
        adapter: args.adapter.clone(),
        out: args.out.clone(),
        prompt,
        shape: LoraShape {
            rank: args.rank,
            alpha: args.alpha,
            rslora: false,
        },
        settings: GrpoSettings {
            generations: args.generations,
            sampling: SamplingParams {
                temperature: args.temperature,
                top_p: args.top_p,
                min_p: args.min_p,
                seed: args.sampling_seed,
            },
            max_completion: args.max_completion,
            aggregation: match args.aggregation {
                AggregationChoice::NormalizeThenSum => Aggregation::NormalizeThenSum,
                AggregationChoice::SumThenNormalize => Aggregation::SumThenNormalize,
            },
            scale: match args.scale {
                ScaleChoice::Group => RewardScale::Group,
                ScaleChoice::Batch => RewardScale::Batch,
                ScaleChoice::None => RewardScale::None,
            },
            dynamic_sampling: args.dynamic_sampling,
            on_reward_error: match args.on_plugin_error {
                OnPluginError::Stop => OnRewardError::Stop,
                OnPluginError::Skip => OnRewardError::Skip,
            },
            update: UpdateSettings {
                clip: ClipRange {
                    low: args.epsilon,
                    high: args.epsilon_high,
                },
                mask_truncated: !args.no_mask_truncated,
                beta: args.beta,
                temperature: args.temperature,
                head_chunk: 1024,
                backward: Backward::Recompute,
                share_prompt: true,
            },
            learning_rate: args.lr,
            max_grad_norm: args.max_grad_norm,
            epochs: args.epochs,
            seed: args.seed,
            stop_after_steps: args.max_steps,
        },
        checkpoint_every: args.checkpoint_every,
        resume: args.resume,
        dtype: dtype(args.dtype, &device),
        device,
    };
    let started = Instant::now();
    let mut bar = Bar {
        bar: None,
        started,
        tokens: 0,
        out: args.out.clone(),
    };
    let outcome = job.run(&rows, &rewards, &mut bar).map_err(|e| match e {
        TrainError::BadRow { .. } | TrainError::BadTarget { .. } | TrainError::NoRows => {
            anyhow::anyhow!("{}: {e}", args.data.display())
        }
        TrainError::Reward { .. } => anyhow::Error::new(e).context(format!(
            "GRPO stopped; the last checkpoint in {} is intact (--resume continues from it, \
                 or --on-plugin-error skip counts a failing reward as missing)",
            args.out.join("checkpoint").display()
        )),
        other => anyhow::Error::new(other).context(format!(
            "GRPO of {} on {}",
            args.model.display(),
            args.data.display()
        )),
    })?;
    if let Some(b) = &bar.bar {
        b.finish_and_clear();
    }
    let steps = outcome.reports.len();
    let dropped: usize = outcome.reports.iter().map(|r| r.dropped_groups).sum();
    let first = outcome.reports.first().map(|r| r.reward);
    let last = outcome.reports.last().map(|r| r.reward);
    println!(
        "GRPO: {steps} steps over {} prompts ({dropped} groups dropped) in {:.1} s; mean \
         reward {} → {}; adapter in {}, curves {} and {}",
        outcome.prompts,
        started.elapsed().as_secs_f64(),
        first.map_or("–".into(), |v| format!("{v:.4}")),
        last.map_or("–".into(), |v| format!("{v:.4}")),
        args.out.display(),
        outcome.rewards_curve.display(),
        outcome.loss_curve.display()
    );
    Ok(())
}
