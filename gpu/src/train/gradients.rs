//! The loss of one training sequence and the gradient of every adapter variable: either with
//! candle's autograd over the whole model at once, or keeping only each decoder layer's input
//! between the forward and the backward pass (activation checkpointing, [`Backward::Recompute`]).
//!
//! candle's autograd keeps every intermediate tensor of the forward pass until `backward`: at
//! full size that is tens of gigabytes per thousand tokens. Here the forward pass runs one layer
//! at a time and keeps only the residual stream between layers, detached (each layer's graph is
//! freed as soon as the next layer has its input). The backward pass then walks the layers from
//! the top: it recomputes one layer from its saved input, made a variable, and back-propagates
//! the gradient arriving at the layer's output (`Σ output · gradient`, the same surrogate as the
//! LM head's); that gives the gradient at the layer's input, for the layer below, and the
//! adapter's gradients inside the layer. Peak memory is one layer's graph plus the saved
//! inputs; the price is a second forward pass, as in transformers' gradient checkpointing.

use super::data::Example;
use super::lora::TrainableLora;
use super::loss::{HeadLoss, LossKind, head_loss, head_loss_weighted, surrogate};
use crate::qwen35::Qwen35Model;
use candle_core::{Result, Tensor, Var};
use std::sync::Arc;

/// How the backward pass gets the activations it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backward {
    /// Keep every intermediate tensor of the forward pass (fastest, most memory).
    KeepAll,
    /// Keep each layer's input only and recompute the layer during the backward pass.
    #[default]
    Recompute,
}

/// Adds the gradients `store` holds for `vars` into `sums`.
pub(crate) fn collect(
    sums: &mut [Option<Tensor>],
    vars: &[&Var],
    store: &candle_core::backprop::GradStore,
) -> Result<()> {
    accumulate(
        sums,
        vars.iter()
            .map(|v| store.get(v.as_tensor()).cloned())
            .collect(),
    )
}

/// Adds `more` (one gradient per variable, `None` where a variable got none) into `sums`.
pub(crate) fn accumulate(sums: &mut [Option<Tensor>], more: Vec<Option<Tensor>>) -> Result<()> {
    for (slot, g) in sums.iter_mut().zip(more) {
        if let Some(g) = g {
            *slot = Some(match slot.take() {
                Some(sum) => (sum + g)?,
                None => g,
            });
        }
    }
    Ok(())
}

/// The summed gradients of `vars`, zeros where nothing reached a variable.
pub(crate) fn or_zeros(sums: Vec<Option<Tensor>>, vars: &[&Var]) -> Result<Vec<Tensor>> {
    sums.into_iter()
        .zip(vars)
        .map(|(g, v)| g.map_or_else(|| v.zeros_like(), Ok))
        .collect()
}

/// The loss of `example` (normalised by `normaliser` response tokens) and the gradient of each
/// of `vars` (the adapter's, in order; `None` where a variable got none).
#[allow(clippy::too_many_arguments)]
pub fn example_gradients(
    model: &Qwen35Model,
    lora: &Arc<TrainableLora>,
    vars: &[&Var],
    example: &Example,
    kind: LossKind,
    normaliser: usize,
    head_chunk: usize,
    backward: Backward,
) -> Result<(HeadLoss, Vec<Option<Tensor>>)> {
    let (loss, grads, _) = gradients_with(
        model,
        lora,
        vars,
        example,
        backward,
        None,
        |hidden, targets| {
            head_loss(
                hidden,
                targets,
                model.lm_head_weight(),
                kind,
                normaliser,
                head_chunk,
            )
        },
    )?;
    Ok((loss, grads))
}

/// A policy-gradient step's gradients for one completion (`example`: the prompt, then the
/// completion as its response): the gradient of `Σ_t w_t · (−log π_t)` over the completion's
/// tokens, with `weights[t] = −∂L/∂log π_t` as `lamar_core::grpo::dapo_loss` gives them (one per
/// completion token). `π` is the policy at the sampling temperature, `softmax(logits / T)`, as
/// TRL's GRPO computes it (`T = 1`: the model's own distribution). The returned loss reports
/// each token's log-probability under it (`HeadLoss::log_probs`), the policy's side of the
/// importance ratio.
#[allow(clippy::too_many_arguments)]
pub fn policy_gradients(
    model: &Qwen35Model,
    lora: &Arc<TrainableLora>,
    vars: &[&Var],
    example: &Example,
    weights: &[f64],
    temperature: f64,
    head_chunk: usize,
    backward: Backward,
) -> Result<(HeadLoss, Vec<Option<Tensor>>)> {
    let (loss, grads, _) = gradients_with(
        model,
        lora,
        vars,
        example,
        backward,
        None,
        policy_head(model, weights, temperature, head_chunk),
    )?;
    Ok((loss, grads))
}

/// The head of [`policy_gradients`]: `Σ_t w_t · (−log π_t)` at temperature `temperature`.
pub(crate) fn policy_head<'a>(
    model: &'a Qwen35Model,
    weights: &'a [f64],
    temperature: f64,
    head_chunk: usize,
) -> impl Fn(&Tensor, &[u32]) -> Result<HeadLoss> + 'a {
    move |hidden, targets| {
        tempered_head(hidden, temperature, |hidden| {
            head_loss_weighted(
                hidden,
                targets,
                model.lm_head_weight(),
                weights,
                1,
                head_chunk,
            )
        })
    }
}

/// `head` at temperature `T`: the logits `W·h / T` are the head's of `h / T`, and the gradient
/// with respect to `h` is `1 / T` times the one with respect to `h / T`.
pub(crate) fn tempered_head(
    hidden: &Tensor,
    temperature: f64,
    head: impl FnOnce(&Tensor) -> Result<HeadLoss>,
) -> Result<HeadLoss> {
    if temperature == 1.0 {
        return head(hidden);
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        candle_core::bail!("the policy's temperature must be positive, not {temperature}");
    }
    let mut loss = head(&(hidden / temperature)?)?;
    loss.hidden_grad = (&loss.hidden_grad / temperature)?;
    Ok(loss)
}

/// The tokens before a sequence that continues them, as their own forward pass left them
/// (training's shared prompt, [`super::shared_prompt`]).
pub(crate) struct Prefix<'a> {
    /// How many tokens came before: the continuation's first position.
    pub start: usize,
    /// Per decoder layer, what the layer carries after the prefix
    /// (`LayerCache::tensors`: keys and values, or convolution history and state), detached.
    pub carried: &'a [Vec<Tensor>],
}

/// Per decoder layer, the gradient of each tensor a [`Prefix`] carried (`None` where none
/// reached it), in f32.
pub(crate) type CarriedGrads = Vec<Vec<Option<Tensor>>>;

/// The loss `head` computes at the response positions' final hidden states and the gradient
/// of each of `vars` (see [`example_gradients`]). With a `prefix` (activation checkpointing
/// only), `example` continues it: every layer starts from what the prefix carried, and the
/// gradient of each carried tensor is returned as well.
pub(crate) fn gradients_with(
    model: &Qwen35Model,
    lora: &Arc<TrainableLora>,
    vars: &[&Var],
    example: &Example,
    backward: Backward,
    prefix: Option<&Prefix>,
    head: impl Fn(&Tensor, &[u32]) -> Result<HeadLoss>,
) -> Result<(HeadLoss, Vec<Option<Tensor>>, CarriedGrads)> {
    let device = vars
        .first()
        .map(|v| v.device().clone())
        .ok_or_else(|| candle_core::Error::Msg("an adapter without variables".into()))?;
    let ids = Tensor::new(example.ids.as_slice(), &device)?.unsqueeze(0)?;
    let (from, n) = example.predicting_positions();
    let targets = example.response();
    let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
    let mut carried_grads: CarriedGrads = Vec::new();
    if backward == Backward::KeepAll {
        if prefix.is_some() {
            candle_core::bail!("a shared prefix needs activation checkpointing");
        }
        let hidden = model
            .hidden_states_with(&ids, None, Some(lora.clone()))?
            .squeeze(0)?
            .narrow(0, from, n)?;
        let loss = head(&hidden, targets)?;
        let store = surrogate(&hidden, &loss.hidden_grad)?.backward()?;
        collect(&mut grads, vars, &store)?;
        return Ok((loss, grads, carried_grads));
    }
    let start = prefix.map_or(0, |p| p.start);
    // The prefix's carried tensors for layer `layer` as a cache (copies for the untracked
    // pass, whose kernels may update a state in place; variables for the backward pass).
    let prefix_cache =
        |layer: usize, tensors: &[Tensor]| model.new_layer_cache(layer).holding(tensors);
    let step = model.training_step(1, example.ids.len(), start, lora.clone())?;
    // With a stopwatch (`lamar train dft --profile`), the stages below add up to the step: the
    // layers' own stage marks split the forward passes, and each backward pass is charged to
    // its layer kind.
    step.lap("train: optimiser update, data and anything between steps")?;
    // Forward: the input of every layer, then the last layer's output, nothing tracked.
    let first = model.checkpoint_step(1, example.ids.len(), start, lora)?;
    let mut inputs = Vec::with_capacity(model.layer_count() + 1);
    inputs.push(model.embed(&ids)?.detach());
    for layer in 0..model.layer_count() {
        let next = match prefix {
            Some(p) => {
                let copies = p.carried[layer]
                    .iter()
                    .map(Tensor::copy)
                    .collect::<Result<Vec<_>>>()?;
                let mut cache = prefix_cache(layer, &copies)?;
                model.run_layer_cached(layer, &inputs[layer], &first, &mut cache)?
            }
            None => model.run_layer(layer, &inputs[layer], &first)?,
        };
        inputs.push(next);
    }
    drop(first);
    step.lap("train: residual add after each layer")?;
    // The head: the loss and its gradient at the last layer's output.
    let top = Var::from_tensor(&inputs[model.layer_count()])?;
    let hidden = model
        .final_norm(top.as_tensor())?
        .squeeze(0)?
        .narrow(0, from, n)?;
    let loss = head(&hidden, targets)?;
    let store = surrogate(&hidden, &loss.hidden_grad)?.backward()?;
    step.lap("train: final norm, LM head and loss, forward and backward")?;
    let mut arriving = store
        .get(top.as_tensor())
        .ok_or_else(|| candle_core::Error::Msg("no gradient reached the last layer".into()))?
        .detach();
    // Down the layers: recompute each from its input, back-propagate what arrives at its output.
    if prefix.is_some() {
        carried_grads = vec![Vec::new(); model.layer_count()];
    }
    for layer in (0..model.layer_count()).rev() {
        let input = Var::from_tensor(&inputs[layer])?;
        let (output, carried) = match prefix {
            Some(p) => {
                let carried = p.carried[layer]
                    .iter()
                    .map(Var::from_tensor)
                    .collect::<Result<Vec<_>>>()?;
                let tensors: Vec<Tensor> = carried.iter().map(|v| v.as_tensor().clone()).collect();
                let mut cache = prefix_cache(layer, &tensors)?;
                let output = model.run_layer_cached(layer, input.as_tensor(), &step, &mut cache)?;
                (output, carried)
            }
            None => (
                model.run_layer(layer, input.as_tensor(), &step)?,
                Vec::new(),
            ),
        };
        step.lap("train: residual add after each layer")?;
        let store = surrogate(&output, &arriving.to_dtype(candle_core::DType::F32)?)?.backward()?;
        step.lap(if model.is_attention_layer(layer) {
            "train: backward of an attention layer"
        } else {
            "train: backward of a DeltaNet layer"
        })?;
        collect(&mut grads, vars, &store)?;
        if prefix.is_some() {
            carried_grads[layer] = carried
                .iter()
                .map(|v| {
                    store
                        .get(v.as_tensor())
                        .map(|g| g.to_dtype(candle_core::DType::F32))
                        .transpose()
                })
                .collect::<Result<_>>()?;
        }
        if layer > 0 {
            arriving = store
                .get(input.as_tensor())
                .ok_or_else(|| {
                    candle_core::Error::Msg(format!("no gradient reached layer {layer}'s input"))
                })?
                .detach();
        }
    }
    Ok((loss, grads, carried_grads))
}
