//! The policy gradients of several completions of one prompt with the prompt's own pass done
//! once, not once per completion.
//!
//! GRPO trains on `G` completions of the same prompt. Each sequence `prompt + completion` has
//! the same first tokens, and the adapter acts on them identically in all `G` sequences, so
//! their forward pass (and their part of the backward pass) gives the same activations `G`
//! times over. Here the prompt, less its last token (the *prefix*: the loss starts at the
//! prompt's last position, which predicts the first completion token), runs once:
//!
//! 1. the prefix's forward pass, keeping each layer's input and what the layer carries to the
//!    tokens after it: a full-attention layer its keys and values, a DeltaNet layer its
//!    convolution history and recurrent state;
//! 2. each completion (the prompt's last token, then the completion) as a continuation: its
//!    forward pass starts every layer from the prefix's carried tensors, and its backward pass
//!    (activation checkpointing, as [`super::gradients`]) makes those tensors variables, so it
//!    returns their gradients beside the adapter's; they are summed over the completions;
//! 3. the prefix's backward pass, from the top layer down: each layer is recomputed from its
//!    input, and what reaches its carried tensors (the summed gradients) and its output (from
//!    the layer above, through its carried tensors) is back-propagated, giving the adapter's
//!    gradients inside the prefix.
//!
//! Gradients are linear, so this is the sum of the `G` separate sequences' gradients exactly
//! (up to rounding): `gpu/tests/grpo.rs` checks it against [`super::gradients::policy_gradients`]
//! per completion. The prefix's share of the work drops from `G` passes to one; at LAMAR's
//! sizes (a 3,000-token prompt, 8 completions of 2,048 tokens) that is over half the tokens.

use super::data::Example;
use super::gradients::{
    Backward, CarriedGrads, Prefix, accumulate, collect, gradients_with, or_zeros, policy_head,
};
use super::lora::TrainableLora;
use super::loss::{HeadLoss, surrogate};
use crate::qwen35::Qwen35Model;
use candle_core::{DType, Result, Tensor, Var};
use std::sync::Arc;

/// One completion of the shared prompt: its tokens and the weight `w_t = −∂L/∂log π_t` of
/// each (as [`super::gradients::policy_gradients`] takes them).
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    /// The completion's tokens (at least one).
    pub tokens: &'a [u32],
    /// One weight per token.
    pub weights: &'a [f64],
}

/// For `completions` of `prompt` (at least two tokens), each completion's [`HeadLoss`] (its
/// tokens' log-probabilities under the policy at `temperature`) and the gradient of
/// `Σ_completions Σ_t w_t · (−log π_t)` with respect to each of `vars` (zeros where nothing
/// reached one): the sum of [`super::gradients::policy_gradients`] over the completions, with
/// the prompt's pass shared (see the module's documentation).
pub fn shared_prompt_policy_gradients(
    model: &Qwen35Model,
    lora: &Arc<TrainableLora>,
    vars: &[&Var],
    prompt: &[u32],
    completions: &[Completion],
    temperature: f64,
    head_chunk: usize,
) -> Result<(Vec<HeadLoss>, Vec<Tensor>)> {
    if prompt.len() < 2 {
        candle_core::bail!("a shared prompt needs at least two tokens");
    }
    if let Some(c) = completions
        .iter()
        .find(|c| c.tokens.is_empty() || c.tokens.len() != c.weights.len())
    {
        candle_core::bail!(
            "a completion of {} tokens with {} weights",
            c.tokens.len(),
            c.weights.len()
        );
    }
    let device = vars
        .first()
        .map(|v| v.device().clone())
        .ok_or_else(|| candle_core::Error::Msg("an adapter without variables".into()))?;
    let start = prompt.len() - 1;
    let (inputs, carried) = prefix_forward(model, lora, &prompt[..start], &device)?;
    let prefix = Prefix {
        start,
        carried: &carried,
    };
    let mut sums: Vec<Option<Tensor>> = vec![None; vars.len()];
    let mut carried_sums: CarriedGrads = carried.iter().map(|c| vec![None; c.len()]).collect();
    let mut losses = Vec::with_capacity(completions.len());
    for completion in completions {
        let mut ids = Vec::with_capacity(completion.tokens.len() + 1);
        ids.push(prompt[start]);
        ids.extend_from_slice(completion.tokens);
        let example = Example {
            ids,
            response_start: 1,
            truncated: false,
        };
        let (loss, grads, carried_grads) = gradients_with(
            model,
            lora,
            vars,
            &example,
            Backward::Recompute,
            Some(&prefix),
            policy_head(model, completion.weights, temperature, head_chunk),
        )?;
        accumulate(&mut sums, grads)?;
        for (sum, grads) in carried_sums.iter_mut().zip(carried_grads) {
            accumulate(sum, grads)?;
        }
        losses.push(loss);
    }
    prefix_backward(model, lora, vars, &inputs, &carried_sums, &mut sums)?;
    Ok((losses, or_zeros(sums, vars)?))
}

/// The prefix's forward pass, nothing tracked: every layer's input (the embeddings first) and
/// what each layer carries after the prefix, detached.
fn prefix_forward(
    model: &Qwen35Model,
    lora: &TrainableLora,
    ids: &[u32],
    device: &candle_core::Device,
) -> Result<(Vec<Tensor>, Vec<Vec<Tensor>>)> {
    let step = model.checkpoint_step(1, ids.len(), 0, lora)?;
    let ids = Tensor::new(ids, device)?.unsqueeze(0)?;
    let mut inputs = Vec::with_capacity(model.layer_count() + 1);
    inputs.push(model.embed(&ids)?.detach());
    let mut carried = Vec::with_capacity(model.layer_count());
    for layer in 0..model.layer_count() {
        let mut cache = model.new_layer_cache(layer);
        let next = model.run_layer_cached(layer, &inputs[layer], &step, &mut cache)?;
        inputs.push(next.detach());
        carried.push(
            cache
                .tensors()?
                .iter()
                .map(Tensor::detach)
                .collect::<Vec<_>>(),
        );
    }
    Ok((inputs, carried))
}

/// The prefix's backward pass: each layer recomputed from its saved input, the gradients
/// `carried_grads` (summed over the continuations) applied to what it carries and the
/// gradient from the layer above to its output; the adapter's gradients are added to `sums`.
fn prefix_backward(
    model: &Qwen35Model,
    lora: &Arc<TrainableLora>,
    vars: &[&Var],
    inputs: &[Tensor],
    carried_grads: &CarriedGrads,
    sums: &mut [Option<Tensor>],
) -> Result<()> {
    let length = inputs[0].dim(1)?;
    let step = model.training_step(1, length, 0, lora.clone())?;
    // Nothing reaches the prefix's last layer output (it predicts no token).
    let mut arriving: Option<Tensor> = None;
    for layer in (0..model.layer_count()).rev() {
        let input = Var::from_tensor(&inputs[layer])?;
        let mut cache = model.new_layer_cache(layer);
        let output = model.run_layer_cached(layer, input.as_tensor(), &step, &mut cache)?;
        let mut terms = Vec::new();
        if let Some(grad) = &arriving {
            terms.push(surrogate(&output, &grad.to_dtype(DType::F32)?)?);
        }
        for (tensor, grad) in cache.tensors()?.iter().zip(&carried_grads[layer]) {
            if let Some(grad) = grad {
                terms.push(surrogate(tensor, grad)?);
            }
        }
        let Some(first) = terms.pop() else {
            // Nothing reached this layer's output or carried tensors.
            arriving = None;
            continue;
        };
        let objective = terms.iter().try_fold(first, |sum, t| sum + t)?;
        let store = objective.backward()?;
        collect(sums, vars, &store)?;
        arriving = store.get(input.as_tensor()).map(Tensor::detach);
    }
    Ok(())
}
