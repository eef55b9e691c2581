//! The policy-gradient loss of a generation batch (`lamar-spec.md` §6.3): DAPO's token-level
//! clipped objective, and its derivative with respect to each token's log-probability, which
//! the trainer back-propagates through its forward pass (a surrogate `Σ wₜ · log πₜ`).
//!
//! Per completion token `t` with advantage `A` (its completion's), the importance ratio
//! `cₜ = exp(log πₜ − log π_oldₜ)` (1 on-policy) and the clip range `[1 − ε_low, 1 + ε_high]`:
//!
//! ```text
//! lₜ = −min(cₜ·A, clip(cₜ)·A)            loss = Σₜ lₜ · maskₜ / N
//! ∂loss/∂log πₜ = −cₜ·A / N   where the unclipped term is the minimum (or the ratio lies
//!                             inside the range), else 0
//! ```
//!
//! `N` is the number of loss tokens of the whole generation batch (TRL's `num_items_in_batch`
//! for `loss_type="dapo"`). A completion masked out (cut by the length limit before its end of
//! turn, with `mask_truncated_completions`) contributes nothing and counts no tokens.

/// DAPO's clip range around 1 (LAMAR: ε 0.2, ε_high 0.28).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipRange {
    /// `ε_low`: ratios below `1 − ε_low` are clipped.
    pub low: f64,
    /// `ε_high`: ratios above `1 + ε_high` are clipped.
    pub high: f64,
}

impl Default for ClipRange {
    fn default() -> Self {
        ClipRange {
            low: 0.2,
            high: 0.28,
        }
    }
}

/// One completion's tokens as the loss sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionTokens {
    /// Log-probabilities of the sampled tokens under the policy being trained.
    pub logprobs: Vec<f64>,
    /// The same under the policy that sampled them (equal on-policy).
    pub old_logprobs: Vec<f64>,
    /// The completion's advantage.
    pub advantage: f64,
    /// False: the completion is left out of the loss (truncated).
    pub in_loss: bool,
}

/// The loss of a batch and its derivative per token.
#[derive(Debug, Clone, PartialEq)]
pub struct DapoLoss {
    /// The loss value.
    pub loss: f64,
    /// Per completion, `∂loss/∂log πₜ` for each token (zeros for completions out of the loss).
    pub logprob_grads: Vec<Vec<f64>>,
    /// Tokens in the loss (`N`).
    pub tokens: usize,
    /// Share of loss tokens whose ratio was clipped (a usual training metric).
    pub clipped_fraction: f64,
}

/// Why a loss cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("completion {completion}: {logprobs} log-probabilities but {old} old ones")]
pub struct LengthMismatch {
    /// The completion's index.
    pub completion: usize,
    /// Its log-probabilities.
    pub logprobs: usize,
    /// Its old log-probabilities.
    pub old: usize,
}

/// DAPO's loss over `completions` (see the module documentation).
pub fn dapo_loss(
    completions: &[CompletionTokens],
    clip: ClipRange,
) -> Result<DapoLoss, LengthMismatch> {
    if let Some((completion, c)) = completions
        .iter()
        .enumerate()
        .find(|(_, c)| c.logprobs.len() != c.old_logprobs.len())
    {
        return Err(LengthMismatch {
            completion,
            logprobs: c.logprobs.len(),
            old: c.old_logprobs.len(),
        });
    }
    let tokens: usize = completions
        .iter()
        .filter(|c| c.in_loss)
        .map(|c| c.logprobs.len())
        .sum();
    let normaliser = tokens.max(1) as f64;
    let (mut loss, mut clipped) = (0.0, 0usize);
    let mut logprob_grads = Vec::with_capacity(completions.len());
    for c in completions {
        if !c.in_loss {
            logprob_grads.push(vec![0.0; c.logprobs.len()]);
            continue;
        }
        let a = c.advantage;
        let grads = c
            .logprobs
            .iter()
            .zip(&c.old_logprobs)
            .map(|(new, old)| {
                let ratio = (new - old).exp();
                let bounded = ratio.clamp(1.0 - clip.low, 1.0 + clip.high);
                let (plain, held) = (ratio * a, bounded * a);
                loss -= plain.min(held);
                let outside = ratio != bounded;
                if outside {
                    clipped += 1;
                }
                // The unclipped term carries the gradient when it is the minimum, or when the
                // ratio is inside the range (both terms equal, the clamp's slope 1).
                if plain <= held || !outside {
                    -ratio * a / normaliser
                } else {
                    0.0
                }
            })
            .collect();
        logprob_grads.push(grads);
    }
    Ok(DapoLoss {
        loss: loss / normaliser,
        logprob_grads,
        tokens,
        clipped_fraction: clipped as f64 / normaliser,
    })
}
