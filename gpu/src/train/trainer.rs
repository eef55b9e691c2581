//! The training loop: LoRA on a frozen model with the DFT (or cross-entropy) loss, AdamW,
//! gradient accumulation, global-norm clipping and the warm-up + cosine schedule, in a seeded,
//! deterministic order. One optimiser step covers `accumulation` examples; the loss of a step is
//! normalised by the response tokens of all of them, as the reference's trainer does.

use super::checkpoint::{Checkpoints, Fingerprint};
use super::data::Example;
use super::gradients::{Backward, accumulate, example_gradients, or_zeros};
use super::lora::TrainableLora;
use super::loss::LossKind;
use super::optim::{AdamW, AdamWConfig, clip_factor, global_norm, warmup_cosine, warmup_steps};
use crate::qwen35::Qwen35Model;
use candle_core::{Result, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::sync::Arc;

/// How to train.
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    /// DFT or plain cross-entropy.
    pub loss: LossKind,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Share of the steps spent warming up.
    pub warmup_ratio: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Examples per optimiser step.
    pub accumulation: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// Global gradient norm limit.
    pub max_grad_norm: f64,
    /// Positions the LM head runs over at a time.
    pub head_chunk: usize,
    /// Seed of the data order.
    pub seed: u64,
    /// Keep every activation for the backward pass, or recompute each layer's.
    pub backward: Backward,
    /// Stop after this many optimiser steps of the run (the schedule still spans all of it),
    /// for example to split a run in parts; `None` runs to the end.
    pub stop_after_steps: Option<usize>,
}

impl Default for TrainConfig {
    /// LAMAR's recipe (lr 2e-4, warm-up 5 %, weight decay 0.001, accumulation 8, 2 epochs,
    /// seed 3407) with PyTorch's clipping at 1.0.
    fn default() -> Self {
        TrainConfig {
            loss: LossKind::Dft,
            learning_rate: 2e-4,
            warmup_ratio: 0.05,
            weight_decay: 0.001,
            accumulation: 8,
            epochs: 2,
            max_grad_norm: 1.0,
            head_chunk: 1024,
            seed: 3407,
            backward: Backward::Recompute,
            stop_after_steps: None,
        }
    }
}

/// What one optimiser step did (a line of the run's `metrics.jsonl`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepReport {
    /// 1-based optimiser step.
    pub step: usize,
    /// Total steps of the run.
    pub total_steps: usize,
    /// Epoch (0-based).
    pub epoch: usize,
    /// The step's loss (DFT or cross-entropy, as trained).
    pub loss: f64,
    /// The step's plain cross-entropy per response token (for comparing runs).
    pub cross_entropy: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Response tokens in the step.
    pub tokens: usize,
    /// Wall-clock seconds the step took (forward, backward and update of all its examples).
    #[serde(default)]
    pub seconds: f64,
}

/// Trains `lora` on `examples` with `model` frozen; `on_step` sees every optimiser step. With
/// `checkpoints`, the state is saved as they say, and a resumed run continues where the last
/// checkpoint left off: on the CPU it ends with the same adapter, bit for bit, as a run that
/// was never interrupted (the data order is replayed from the seed).
pub fn train(
    model: &Qwen35Model,
    lora: &Arc<TrainableLora>,
    examples: &[Example],
    config: &TrainConfig,
    checkpoints: Option<&Checkpoints>,
    mut on_step: impl FnMut(&StepReport),
) -> Result<()> {
    if examples.is_empty() || config.accumulation == 0 {
        candle_core::bail!("training needs examples and an accumulation of at least 1");
    }
    let vars: Vec<_> = lora.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut optimiser = AdamW::new(
        &vars,
        AdamWConfig {
            weight_decay: config.weight_decay,
            ..AdamWConfig::default()
        },
    )?;
    let steps_per_epoch = examples.len().div_ceil(config.accumulation);
    let total = steps_per_epoch * config.epochs;
    let warmup = warmup_steps(total, config.warmup_ratio);
    let device = vars[0].device().clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    // What a checkpoint must have been made with to be continued here (not when to stop).
    let fingerprint = Fingerprint::of(
        examples,
        &(
            config.loss,
            config.learning_rate,
            config.warmup_ratio,
            config.weight_decay,
            config.accumulation,
            config.epochs,
            config.max_grad_norm,
            config.seed,
            lora.shape(),
        ),
    );
    let done = match checkpoints {
        Some(c) => c.read(&mut optimiser, &fingerprint, &device)?,
        None => 0,
    };
    let stop = config.stop_after_steps.unwrap_or(total).min(total);
    let mut step = 0;
    for epoch in 0..config.epochs {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(&mut rng);
        for group in order.chunks(config.accumulation) {
            if step < done {
                step += 1; // done before the checkpoint: only the order is replayed
                continue;
            }
            if step >= stop {
                return Ok(());
            }
            let tokens: usize = group
                .iter()
                .map(|&k| examples[k].ids.len() - examples[k].response_start)
                .sum();
            let started = std::time::Instant::now();
            let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
            let (mut weighted, mut cross_entropy) = (0f64, 0f64);
            for &k in group {
                let (loss, example_grads) = example_gradients(
                    model,
                    lora,
                    &vars,
                    &examples[k],
                    config.loss,
                    tokens,
                    config.head_chunk,
                    config.backward,
                )?;
                weighted += loss.weighted_sum;
                cross_entropy += loss.cross_entropy_sum;
                accumulate(&mut grads, example_grads)?;
            }
            let grads = or_zeros(grads, &vars)?;
            let grad_norm = global_norm(&grads)?;
            let learning_rate = config.learning_rate * warmup_cosine(step, total, warmup);
            let clip = clip_factor(grad_norm, config.max_grad_norm);
            optimiser.step_scaled(&vars, &grads, learning_rate, clip)?;
            step += 1;
            on_step(&StepReport {
                step,
                total_steps: total,
                epoch,
                loss: weighted / tokens as f64,
                cross_entropy: cross_entropy / tokens as f64,
                learning_rate,
                grad_norm,
                tokens,
                seconds: started.elapsed().as_secs_f64(),
            });
            if let Some(c) = checkpoints
                && (step % c.every.max(1) == 0 || step % steps_per_epoch == 0)
            {
                c.write(lora, &optimiser, step, &fingerprint)?;
            }
        }
    }
    Ok(())
}
