//! The policy-gradient half of a GRPO step: from a group's rollouts and their advantages to the
//! gradient of every adapter variable.
//!
//! DAPO's loss (`lamar_core::grpo::dapo_loss`) gives `∂L/∂log πₜ` for every completion token;
//! the training forward pass then recomputes each completion's log-probabilities with the
//! adapter tracked and back-propagates `Σₜ (∂L/∂log πₜ)·log πₜ`: the prompt's pass once for
//! the whole group and each completion continuing it ([`shared_prompt_policy_gradients`]), or
//! one whole sequence at a time ([`policy_gradients`]; activation checkpointing as in DFT). One optimiser step per generation
//! batch (TRL's `num_iterations = 1`) makes the importance ratio exactly 1: the "old"
//! log-probabilities are the policy's own, as TRL sets them (`old = log π.detach()`). The
//! sampler's log-probabilities must nevertheless equal the recomputed ones (the same policy,
//! two code paths: cached decoding and the training pass); [`PolicyUpdate::max_drift`]
//! reports how far they are apart, and the tests bound it.

use super::rollout::Rollout;
use crate::qwen35::Qwen35Model;
use crate::train::data::Example;
use crate::train::gradients::{Backward, accumulate, or_zeros, policy_gradients, tempered_head};
use crate::train::lora::TrainableLora;
use crate::train::loss::{HeadLoss, LossKind, head_loss};
use crate::train::shared_prompt::{Completion, shared_prompt_policy_gradients};
use candle_core::{Result, Tensor, Var};
use lamar_core::grpo::{ClipRange, CompletionTokens, add_kl_penalty, dapo_loss};
use std::sync::Arc;

/// How the loss is formed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateSettings {
    /// DAPO's clip range (ε 0.2, ε_high 0.28).
    pub clip: ClipRange,
    /// Completions cut at the length limit before their end of turn contribute no loss.
    pub mask_truncated: bool,
    /// Weight of the KL penalty against the model without the adapter (0: none, LAMAR's).
    pub beta: f64,
    /// The sampling temperature: the policy is `softmax(logits / T)` (TRL's), in the loss, the
    /// KL penalty and the on-policy check alike. The rollouts' sampler must report its
    /// log-probabilities at the same temperature ([`crate::sampling::Sampler::with_tempered_log_probs`]).
    pub temperature: f64,
    /// Positions the LM head runs over at a time.
    pub head_chunk: usize,
    /// Activation checkpointing or not.
    pub backward: Backward,
    /// Run the prompt's pass once for all completions of the group
    /// ([`crate::train::shared_prompt`]; with activation checkpointing and at least two
    /// completions in the loss), not once per completion. The same gradients up to rounding.
    pub share_prompt: bool,
}

/// What [`policy_update`] computed.
#[derive(Debug, Clone)]
pub struct PolicyUpdate {
    /// The loss (DAPO's, plus `β·KL` when asked).
    pub loss: f64,
    /// One gradient per adapter variable, in order.
    pub grads: Vec<Tensor>,
    /// Completion tokens in the loss.
    pub tokens: usize,
    /// Completions in the loss.
    pub completions_in_loss: usize,
    /// Share of loss tokens whose ratio was clipped.
    pub clipped_fraction: f64,
    /// Mean per-token KL estimate against the adapter-off model (with `β > 0`).
    pub kl: Option<f64>,
    /// The largest `|log π_sampler − log π_recomputed|` over the tokens that were recomputed.
    pub max_drift: f64,
}

/// The sequence a completion makes after its prompt (the completion as the response).
fn sequence(prompt: &[u32], rollout: &Rollout) -> Example {
    let mut ids = prompt.to_vec();
    ids.extend_from_slice(&rollout.tokens);
    Example {
        ids,
        response_start: prompt.len(),
        truncated: false,
    }
}

/// Each completion token's log-probability under the model without any adapter.
fn reference_log_probs(
    model: &Qwen35Model,
    example: &Example,
    temperature: f64,
    head_chunk: usize,
) -> Result<Vec<f64>> {
    let device = model.lm_head_weight().device().clone();
    let ids = Tensor::new(example.ids.as_slice(), &device)?.unsqueeze(0)?;
    let (from, n) = example.predicting_positions();
    let hidden = model
        .hidden_states_with(&ids, None, None)?
        .squeeze(0)?
        .narrow(0, from, n)?;
    let loss = tempered_head(&hidden, temperature, |hidden| {
        head_loss(
            hidden,
            example.response(),
            model.lm_head_weight(),
            LossKind::CrossEntropy,
            1,
            head_chunk,
        )
    })?;
    Ok(loss.log_probs.iter().map(|&x| f64::from(x)).collect())
}

/// The loss of one group (`rollouts` of `prompt`, one advantage each) and the gradient of each
/// of `vars` (the adapter's, in order; zeros where nothing reached one).
#[allow(clippy::too_many_arguments)]
pub fn policy_update(
    model: &Qwen35Model,
    lora: &Arc<TrainableLora>,
    vars: &[&Var],
    prompt: &[u32],
    rollouts: &[Rollout],
    advantages: &[f64],
    settings: &UpdateSettings,
) -> Result<PolicyUpdate> {
    if rollouts.len() != advantages.len() {
        candle_core::bail!(
            "{} rollouts but {} advantages",
            rollouts.len(),
            advantages.len()
        );
    }
    if prompt.is_empty() {
        candle_core::bail!("a rollout's prompt needs at least one token");
    }
    let completions: Vec<CompletionTokens> = rollouts
        .iter()
        .zip(advantages)
        .map(|(r, &advantage)| {
            let sampled: Vec<f64> = r.log_probs.iter().map(|&x| f64::from(x)).collect();
            CompletionTokens {
                old_logprobs: sampled.clone(),
                logprobs: sampled,
                advantage,
                in_loss: !r.tokens.is_empty() && (r.finished || !settings.mask_truncated),
            }
        })
        .collect();
    let mut loss = dapo_loss(&completions, settings.clip).map_err(candle_core::Error::wrap)?;
    let examples: Vec<Example> = rollouts.iter().map(|r| sequence(prompt, r)).collect();
    let kl = if settings.beta > 0.0 {
        let reference = examples
            .iter()
            .zip(&completions)
            .map(|(e, c)| {
                if c.in_loss {
                    reference_log_probs(model, e, settings.temperature, settings.head_chunk)
                } else {
                    Ok(c.logprobs.clone())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let penalty = add_kl_penalty(&mut loss, &completions, &reference, settings.beta)
            .map_err(candle_core::Error::wrap)?;
        Some(penalty.mean_kl)
    } else {
        None
    };
    // Nothing to back-propagate for a completion out of the loss, or with an advantage of 0
    // and no penalty. policy_gradients differentiates Σ wₜ·(−log πₜ): wₜ = −∂L/∂log πₜ.
    let recompute: Vec<(usize, Vec<f64>)> = completions
        .iter()
        .zip(&loss.logprob_grads)
        .enumerate()
        .filter(|(_, (c, grads))| c.in_loss && grads.iter().any(|&g| g != 0.0))
        .map(|(i, (_, grads))| (i, grads.iter().map(|g| -g).collect()))
        .collect();
    let mut max_drift = 0f64;
    let mut drift = |i: usize, recomputed: &HeadLoss| {
        for (new, old) in recomputed.log_probs.iter().zip(&completions[i].logprobs) {
            max_drift = max_drift.max((f64::from(*new) - old).abs());
        }
    };
    let grads = if settings.share_prompt
        && settings.backward == Backward::Recompute
        && prompt.len() >= 2
        && recompute.len() >= 2
    {
        let shared: Vec<Completion> = recompute
            .iter()
            .map(|(i, weights)| Completion {
                tokens: &rollouts[*i].tokens,
                weights,
            })
            .collect();
        let (recomputed, grads) = shared_prompt_policy_gradients(
            model,
            lora,
            vars,
            prompt,
            &shared,
            settings.temperature,
            settings.head_chunk,
        )?;
        for ((i, _), loss) in recompute.iter().zip(&recomputed) {
            drift(*i, loss);
        }
        grads
    } else {
        let mut sums: Vec<Option<Tensor>> = vec![None; vars.len()];
        for (i, weights) in &recompute {
            let (recomputed, example_grads) = policy_gradients(
                model,
                lora,
                vars,
                &examples[*i],
                weights,
                settings.temperature,
                settings.head_chunk,
                settings.backward,
            )?;
            drift(*i, &recomputed);
            accumulate(&mut sums, example_grads)?;
        }
        or_zeros(sums, vars)?
    };
    Ok(PolicyUpdate {
        loss: loss.loss,
        grads,
        tokens: loss.tokens,
        completions_in_loss: completions.iter().filter(|c| c.in_loss).count(),
        clipped_fraction: loss.clipped_fraction,
        kl,
        max_drift,
    })
}
