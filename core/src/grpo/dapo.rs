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

/// What [`add_kl_penalty`] added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlPenalty {
    /// Mean per-token KL estimate over the loss tokens (TRL's logged `kl`).
    pub mean_kl: f64,
}

/// Adds `β·KLₜ` to every loss token of `loss` (TRL's `beta`): the per-token estimate of
/// `KL(π ‖ π_ref)` TRL uses, `KLₜ = exp(rₜ − log πₜ) − (rₜ − log πₜ) − 1` with `rₜ` the reference
/// model's log-probability (for LAMAR's Model 2: the model without the new adapter), summed over
/// the loss tokens and divided by the same `N` as the policy term. Its derivative,
/// `β·(1 − exp(rₜ − log πₜ)) / N`, is added to `loss.logprob_grads`. `reference` holds one
/// log-probability per token of each completion.
pub fn add_kl_penalty(
    loss: &mut DapoLoss,
    completions: &[CompletionTokens],
    reference: &[Vec<f64>],
    beta: f64,
) -> Result<KlPenalty, LengthMismatch> {
    if let Some((completion, (c, r))) = completions
        .iter()
        .zip(reference)
        .enumerate()
        .find(|(_, (c, r))| c.logprobs.len() != r.len())
    {
        return Err(LengthMismatch {
            completion,
            logprobs: c.logprobs.len(),
            old: r.len(),
        });
    }
    let normaliser = loss.tokens.max(1) as f64;
    let mut total = 0.0;
    for ((c, r), grads) in completions
        .iter()
        .zip(reference)
        .zip(&mut loss.logprob_grads)
    {
        if !c.in_loss {
            continue;
        }
        for ((lp, reference), g) in c.logprobs.iter().zip(r).zip(grads.iter_mut()) {
            let d = reference - lp;
            let kl = d.exp() - d - 1.0;
            total += kl;
            loss.loss += beta * kl / normaliser;
            *g += beta * (1.0 - d.exp()) / normaliser;
        }
    }
    Ok(KlPenalty {
        mean_kl: total / normaliser,
    })
}

#[cfg(test)]
mod kl_tests {
    use super::*;

    fn batch(logprobs: &[Vec<f64>]) -> Vec<CompletionTokens> {
        logprobs
            .iter()
            .enumerate()
            .map(|(k, lp)| CompletionTokens {
                logprobs: lp.clone(),
                old_logprobs: lp.clone(),
                advantage: 0.5 - k as f64,
                in_loss: k != 2,
            })
            .collect()
    }

    /// The loss with the penalty, at `logprobs` (the old ones held where they were).
    fn total(logprobs: &[Vec<f64>], old: &[Vec<f64>], reference: &[Vec<f64>], beta: f64) -> f64 {
        let mut completions = batch(old);
        for (c, lp) in completions.iter_mut().zip(logprobs) {
            c.logprobs = lp.clone();
        }
        let mut loss = dapo_loss(&completions, ClipRange::default()).unwrap();
        add_kl_penalty(&mut loss, &completions, reference, beta).unwrap();
        loss.loss
    }

    #[test]
    fn the_penalty_and_its_derivative_agree_with_finite_differences() {
        let old = vec![vec![-0.5, -1.25, -0.1], vec![-2.0, -0.3], vec![-0.7]];
        let reference = vec![vec![-0.4, -1.5, -0.2], vec![-1.0, -0.3], vec![-3.0]];
        let beta = 0.3;
        let completions = batch(&old);
        let mut loss = dapo_loss(&completions, ClipRange::default()).unwrap();
        let plain = loss.clone();
        let kl = add_kl_penalty(&mut loss, &completions, &reference, beta).unwrap();
        // By hand for the first token: d = 0.1, KL = e^0.1 − 1.1.
        assert!(kl.mean_kl > 0.0);
        assert!((loss.loss - plain.loss - beta * kl.mean_kl).abs() < 1e-12);
        let h = 1e-6;
        for (i, row) in old.iter().enumerate() {
            for t in 0..row.len() {
                let mut up = old.clone();
                up[i][t] += h;
                let mut down = old.clone();
                down[i][t] -= h;
                let numeric = (total(&up, &old, &reference, beta)
                    - total(&down, &old, &reference, beta))
                    / (2.0 * h);
                let analytic = loss.logprob_grads[i][t];
                assert!(
                    (numeric - analytic).abs() < 1e-7,
                    "completion {i} token {t}: {numeric} vs {analytic}"
                );
            }
        }
        // A completion out of the loss gets nothing, and a reference of the wrong length is
        // refused.
        assert_eq!(loss.logprob_grads[2], [0.0]);
        let short = vec![vec![-0.4], vec![-1.0, -0.3], vec![-3.0]];
        assert!(add_kl_penalty(&mut loss, &completions, &short, beta).is_err());
    }
}
