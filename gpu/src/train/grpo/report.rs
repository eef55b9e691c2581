//! What a GRPO run writes as it goes: one [`GrpoStepReport`] per optimiser step
//! (`OUT/metrics.jsonl`), one [`RolloutRecord`] per sampled completion (`OUT/rollouts.jsonl`),
//! both flushed line by line so that a killed run keeps them, and the curves drawn from the
//! reports at the end ([`reward_curves`], [`loss_curve`]).

use crate::train::metrics::{Logged, step_chart};
pub use lamar_core::grpo::{NamedScore, RolloutRecord};
use lamar_core::plot::{Chart, Series, line_chart};
use serde::{Deserialize, Serialize};

/// One optimiser step (a line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrpoStepReport {
    /// 1-based optimiser step.
    pub step: usize,
    /// Steps of the whole run if no group is dropped (prompts × epochs).
    pub total_steps: usize,
    /// Epoch (0-based).
    pub epoch: usize,
    /// The prompt's document id.
    pub prompt_id: String,
    /// Each reward's mean over the group.
    pub rewards: Vec<NamedScore>,
    /// Mean over the group of the weighted sum of the rewards present.
    pub reward: f64,
    /// Unbiased standard deviation of that sum within the group.
    pub reward_std: f64,
    /// The loss (DAPO's, plus the KL penalty when asked).
    pub loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Mean completion length in tokens.
    pub completion_tokens: f64,
    /// Completions cut at the length limit before their end of turn.
    pub truncated: usize,
    /// Completions in the loss.
    pub in_loss: usize,
    /// Share of loss tokens whose importance ratio was clipped.
    pub clipped_fraction: f64,
    /// Mean per-token KL against the model without the adapter (with `--beta`).
    pub kl: Option<f64>,
    /// Largest difference between a token's log-probability as sampled and as recomputed by the
    /// training pass (0 in exact arithmetic: the on-policy check).
    pub logprob_drift: f64,
    /// Groups dropped before this step for carrying no signal (dynamic sampling).
    pub dropped_groups: usize,
    /// Seconds sampling the group.
    pub rollout_seconds: f64,
    /// Seconds scoring it.
    pub scoring_seconds: f64,
    /// Seconds of the log-probability passes, backward passes and optimiser update.
    pub update_seconds: f64,
    /// Completion tokens per second of the rollout.
    pub rollout_tokens_per_second: f64,
    /// Prompts sampled so far in the run (dropped groups included): where a resumed run
    /// continues.
    #[serde(default)]
    pub position: usize,
}

impl Logged for GrpoStepReport {
    fn step(&self) -> usize {
        self.step
    }
}

impl Logged for RolloutRecord {
    fn step(&self) -> usize {
        self.step
    }
}

/// Each reward's mean and the weighted total by optimiser step, as SVG.
pub fn reward_curves(reports: &[GrpoStepReport], title: &str) -> String {
    let mut series: Vec<Series> = Vec::new();
    if let Some(first) = reports.first() {
        for (k, named) in first.rewards.iter().enumerate() {
            series.push(Series {
                name: named.name.clone(),
                points: reports
                    .iter()
                    .filter_map(|r| Some((r.step as f64, r.rewards.get(k)?.value?)))
                    .collect(),
            });
        }
    }
    series.push(Series {
        name: "weighted sum".into(),
        points: reports.iter().map(|r| (r.step as f64, r.reward)).collect(),
    });
    line_chart(
        &Chart {
            title: title.into(),
            x_label: "optimiser step".into(),
            y_label: "mean reward of the group".into(),
        },
        &series,
    )
}

/// The loss and the gradient norm by optimiser step, as SVG.
pub fn loss_curve(reports: &[GrpoStepReport], title: &str) -> String {
    step_chart(
        reports,
        title,
        "loss / gradient norm",
        &[
            ("loss", |r| r.loss),
            ("gradient norm (before clipping)", |r| r.grad_norm),
        ],
    )
}
