//! `lamar train`: fine-tune a LoRA adapter.

use super::infer::{DeviceChoice, DtypeChoice, device, dtype};
use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use lamar_core::formats::rows::read_training_rows;
use lamar_core::prompt::TaskPrompt;
use lamar_model::train::job::{DftJob, TrainError};
use lamar_model::train::lora::{AdapterProducts, LoraShape};
use lamar_model::train::loss::LossKind;
use lamar_model::train::trainer::TrainConfig;
use std::path::PathBuf;

/// Fine-tune a model.
#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    Dft(DftArgs),
    Grpo(super::grpo::GrpoArgs),
    Encoder(super::encoder::EncoderTrainArgs),
}

/// The loss.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossChoice {
    /// Dynamic Fine-Tuning: each response token's cross-entropy weighted by its probability.
    Dft,
    /// Plain cross-entropy.
    Ce,
}

/// Train a LoRA adapter on tagged rows with Dynamic Fine-Tuning (LAMAR's models 1 and 3).
///
/// Each row of --data (`lamar tag`'s JSONL or CSV: `raw_text` and its tagged copy `gold_span`)
/// becomes a conversation, the task prompt filled with the raw text and the tagged copy as the
/// answer, rendered by the snapshot's chat template (thinking off); only the answer's tokens
/// count. LoRA (rank, alpha, rsLoRA) on every linear layer of the frozen model, AdamW with
/// decoupled weight decay, linear warm-up then cosine decay, gradient accumulation and clipping
/// at 1.0; the defaults are the reference's recipe. The adapter is written to --out in PEFT's
/// format (`lamar infer --adapter OUT` and Python's PEFT load it), with the loss of every step in
/// OUT/metrics.jsonl and the loss curve in OUT/loss.svg. Checkpoints (adapter, optimiser, position) go to OUT/checkpoint every
/// --checkpoint-every steps and at each epoch's end, atomically; --resume continues from the
/// last. Runs on the CPU (f32, deterministic: a resumed run ends bit for bit as an uninterrupted
/// one) or on CUDA (the frozen model in bf16, lamar's training kernels: see BENCHMARKS.md for
/// full-size step times).
#[derive(Args, Debug)]
pub struct DftArgs {
    /// Model snapshot (config.json, *.safetensors, tokenizer.json, chat template).
    #[arg(long)]
    pub model: PathBuf,
    /// Training rows (`lamar tag` output).
    #[arg(long)]
    pub data: PathBuf,
    /// Folder to write the adapter and metrics into.
    #[arg(long)]
    pub out: PathBuf,
    /// Task prompt with a `{raw_text}` field (default: lamar's built-in prompt).
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// Loss.
    #[arg(long, value_enum, default_value = "dft")]
    pub loss: LossChoice,
    /// LoRA rank.
    #[arg(long, default_value_t = 256)]
    pub rank: usize,
    /// LoRA alpha.
    #[arg(long, default_value_t = 32.0)]
    pub alpha: f64,
    /// Plain `alpha / rank` scaling instead of rank-stabilised `alpha / sqrt(rank)`.
    #[arg(long)]
    pub no_rslora: bool,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Share of the steps spent warming the learning rate up.
    #[arg(long, default_value_t = 0.05)]
    pub warmup_ratio: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.001)]
    pub weight_decay: f64,
    /// Rows per optimiser step (gradient accumulation, batch 1).
    #[arg(long, default_value_t = 8)]
    pub accumulation: usize,
    /// Passes over the data.
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    /// Longest sequence in tokens; longer rows are cut at the right (and counted).
    #[arg(long, default_value_t = 24_576)]
    pub max_length: usize,
    /// Seed of the adapter's initialisation and of the data order.
    #[arg(long, default_value_t = 3407)]
    pub seed: u64,
    /// Optimiser steps between checkpoints (OUT/checkpoint; one is also written at each
    /// epoch's end).
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: usize,
    /// Where to train: cuda needs a binary built with `--features cuda`.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Precision of the frozen model (auto: bf16 on CUDA, f32 on the CPU); the adapter, its
    /// gradients, the optimiser and the loss are always f32.
    #[arg(long, value_enum, default_value_t = DtypeChoice::Auto)]
    pub dtype: DtypeChoice,
    /// Continue from OUT/checkpoint (same data and flags); on the CPU the result is the same,
    /// bit for bit, as an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
    /// On CUDA, let the f32 matrix products (the adapter's) use TF32 tensor cores: faster, with
    /// about three decimal digits in each product instead of seven (PyTorch's
    /// `allow_tf32`). The adapter, its gradients and the optimiser stay f32.
    #[arg(long)]
    pub tf32: bool,
    /// Time every stage of the forward and backward passes (the device is waited for after
    /// each, so the run is slower) and print where the time went.
    #[arg(long)]
    pub profile: bool,
    /// The dtype of the adapter's products `s·(x Aᵀ) Bᵀ`: `f32` (as PEFT computes them) or
    /// `model` (the frozen model's dtype, bf16 on CUDA: tensor cores and half the memory
    /// traffic; the adapter, its gradients and the optimiser stay f32).
    #[arg(long, default_value = "f32")]
    pub adapter_products: AdapterProducts,
}

/// Runs `lamar train`.
pub fn run(command: &TrainCommand) -> Result<()> {
    match command {
        TrainCommand::Dft(args) => dft(args),
        TrainCommand::Grpo(args) => super::grpo::grpo(args),
        TrainCommand::Encoder(args) => super::encoder::train(args),
    }
}

fn dft(args: &DftArgs) -> Result<()> {
    let prompt = match &args.prompt_file {
        Some(path) => TaskPrompt::from_file(path)?,
        None => TaskPrompt::builtin(),
    };
    let rows = read_training_rows(&args.data)?;
    let device = device(args.device)?;
    candle_core::cuda::set_gemm_reduced_precision_f32(args.tf32);
    let job = DftJob {
        model: args.model.clone(),
        out: args.out.clone(),
        prompt,
        shape: LoraShape {
            rank: args.rank,
            alpha: args.alpha,
            rslora: !args.no_rslora,
        },
        config: TrainConfig {
            loss: match args.loss {
                LossChoice::Dft => LossKind::Dft,
                LossChoice::Ce => LossKind::CrossEntropy,
            },
            learning_rate: args.lr,
            warmup_ratio: args.warmup_ratio,
            weight_decay: args.weight_decay,
            accumulation: args.accumulation,
            epochs: args.epochs,
            seed: args.seed,
            ..TrainConfig::default()
        },
        max_length: args.max_length,
        checkpoint_every: args.checkpoint_every,
        resume: args.resume,
        dtype: dtype(args.dtype, &device),
        device,
        profile: args.profile,
        adapter_products: args.adapter_products,
    };
    let started = std::time::Instant::now();
    let bar = std::cell::OnceCell::new();
    let mut tokens = 0usize;
    let outcome = job
        .run(
            &rows,
            |total, done| {
                let checkpoint = args.out.join("checkpoint");
                let _ = bar.set(crate::progress::training(total, done, "train", &checkpoint));
            },
            |s| {
                tokens += s.tokens;
                let rate = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
                if let Some(b) = bar.get() {
                    b.set_message(format!(
                        "loss {:.4} lr {:.2e} {rate:.0} tok/s",
                        s.loss, s.learning_rate
                    ));
                    b.inc(1);
                }
            },
        )
        .map_err(|e| match e {
            // Problems of the data name the file first, then the row.
            TrainError::BadRow { .. } | TrainError::BadTarget { .. } | TrainError::NoRows => {
                anyhow::anyhow!("{}: {e}", args.data.display())
            }
            other => anyhow::Error::new(other).context(format!(
                "training {} on {}",
                args.model.display(),
                args.data.display()
            )),
        })?;
    if let Some(b) = bar.get() {
        b.finish_and_clear();
    }
    let last = outcome.last;
    println!(
        "trained {} steps on {} rows ({} cut at {} tokens) in {:.1} s: last loss {:.4} \
         (cross-entropy {:.4}); adapter in {}, loss curve {}",
        last.step,
        outcome.rows,
        outcome.truncated,
        args.max_length,
        started.elapsed().as_secs_f64(),
        last.loss,
        last.cross_entropy,
        args.out.display(),
        outcome.curve.display()
    );
    if !outcome.profile.is_empty() {
        let total: f64 = outcome.profile.iter().map(|(_, s, _)| s).sum();
        println!("where the time went ({total:.2} s in all, stages timed one by one):");
        for (stage, seconds, times) in &outcome.profile {
            println!(
                "  {:>8.3} s {:>5.1} %  {:>6}×  {stage}",
                seconds,
                100.0 * seconds / total,
                times
            );
        }
    }
    Ok(())
}
