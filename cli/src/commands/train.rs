//! `lamar train`: fine-tune a LoRA adapter.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use lamar_core::formats::rows::read_training_rows;
use lamar_core::prompt::TaskPrompt;
use lamar_model::chat::ChatTemplate;
use lamar_model::qwen35;
use lamar_model::tokenizer::TextTokenizer;
use lamar_model::train::data::example;
use lamar_model::train::lora::{ALL_LINEAR, LoraShape, TrainableLora};
use lamar_model::train::loss::LossKind;
use lamar_model::train::trainer::{Checkpoints, TrainConfig, train};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Fine-tune a model.
#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    Dft(DftArgs),
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
/// OUT/metrics.jsonl. Checkpoints (adapter, optimiser, position) go to OUT/checkpoint every
/// --checkpoint-every steps and at each epoch's end, atomically; --resume continues from the
/// last. Runs on the CPU (f32); CUDA training is not built yet.
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
    /// Continue from OUT/checkpoint (same data and flags); on the CPU the result is the same,
    /// bit for bit, as an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
}

/// Runs `lamar train`.
pub fn run(command: &TrainCommand) -> Result<()> {
    match command {
        TrainCommand::Dft(args) => dft(args),
    }
}

fn dft(args: &DftArgs) -> Result<()> {
    if args.rank == 0 || args.accumulation == 0 || args.epochs == 0 {
        bail!("--rank, --accumulation and --epochs must be at least 1");
    }
    let prompt = match &args.prompt_file {
        Some(path) => TaskPrompt::from_file(path)?,
        None => TaskPrompt::builtin(),
    };
    let rows = read_training_rows(&args.data)?;
    if rows.is_empty() {
        bail!("{}: holds no training rows", args.data.display());
    }
    let device = candle_core::Device::Cpu;
    let model = qwen35::load(&args.model, candle_core::DType::F32, &device)?;
    let tokenizer = TextTokenizer::from_snapshot(&args.model)?;
    let template = ChatTemplate::from_snapshot(&args.model)?;
    let mut examples = Vec::with_capacity(rows.len());
    for (k, row) in rows.iter().enumerate() {
        let e = example(
            &tokenizer,
            &template,
            &prompt,
            &row.raw_text,
            &row.gold_span,
            args.max_length,
        )
        .with_context(|| {
            format!(
                "{}: row {} (document {})",
                args.data.display(),
                k + 1,
                row.file_id
            )
        })?;
        examples.push(e);
    }
    let truncated = examples.iter().filter(|e| e.truncated).count();
    let shape = LoraShape {
        rank: args.rank,
        alpha: args.alpha,
        rslora: !args.no_rslora,
    };
    let checkpoints = Checkpoints {
        dir: args.out.clone(),
        every: args.checkpoint_every,
        resume: args.resume,
    };
    let resuming = args.resume && checkpoints.last().join("state.json").is_file();
    let lora = Arc::new(if resuming {
        println!("resuming from {}", checkpoints.last().display());
        TrainableLora::from_peft(&checkpoints.last(), &model, &device)?
    } else {
        TrainableLora::init(&model, &ALL_LINEAR, shape, args.seed, &device)?
    });
    let config = TrainConfig {
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
    };
    let total = examples.len().div_ceil(args.accumulation) * args.epochs;
    let bar = crate::progress::bar(total, "train");
    let started = std::time::Instant::now();
    // One line per step, flushed as it is made (a killed run keeps its metrics; a resumed run
    // appends, repeating the steps after the last checkpoint with the same values).
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let metrics_path = args.out.join("metrics.jsonl");
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(resuming)
        .write(true)
        .truncate(!resuming)
        .open(&metrics_path)
        .with_context(|| format!("opening {}", metrics_path.display()))?;
    let mut write_error: Option<std::io::Error> = None;
    let (mut tokens, mut last) = (0usize, None);
    train(&model, &lora, &examples, &config, Some(&checkpoints), |s| {
        tokens += s.tokens;
        let rate = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "loss {:.4} lr {:.2e} {rate:.0} tok/s",
            s.loss, s.learning_rate
        ));
        bar.inc(1);
        let line = serde_json::json!({
            "step": s.step, "epoch": s.epoch, "loss": s.loss,
            "cross_entropy": s.cross_entropy, "learning_rate": s.learning_rate,
            "grad_norm": s.grad_norm, "tokens": s.tokens,
        });
        if let Err(e) = writeln!(metrics, "{line}").and_then(|()| metrics.flush()) {
            write_error.get_or_insert(e);
        }
        last = Some(*s);
    })?;
    if let Some(e) = write_error {
        bail!("writing {}: {e}", metrics_path.display());
    }
    bar.finish_and_clear();
    lora.save_peft(&args.out, &args.model.display().to_string())?;
    let last = last.context("no step ran")?;
    println!(
        "trained {} steps on {} rows ({truncated} cut at {} tokens) in {:.1} s: last loss {:.4} \
         (cross-entropy {:.4}); adapter in {}",
        last.step,
        examples.len(),
        args.max_length,
        started.elapsed().as_secs_f64(),
        last.loss,
        last.cross_entropy,
        args.out.display()
    );
    Ok(())
}
