//! One LoRA training step of a Qwen3.5 snapshot at given sequence lengths: step time and
//! tokens per second (run on the GPU machine by `gpu/tools/gpu-train-bench.sh`, which times
//! transformers + PEFT on the same model in the same call and samples the GPU's memory).
//!
//! ```text
//! train-bench --model DIR [--lengths 2048,8192] [--steps 3] [--device cuda|cpu]
//!             [--dtype bf16|f32] [--rank 256] [--alpha 32] [--loss dft|ce] [--profile] [--tf32]
//!             [--kernels all|none|LIST] [--adapter-products f32|model] [--same-batch]
//! ```
//!
//! Each sequence is `LEN` random token ids (seeded), its second half the response (LAMAR's rows
//! are a note, then its tagged copy); each step trains one sequence (batch 1, no accumulation)
//! with LAMAR's recipe otherwise (rsLoRA on every linear layer, AdamW, DFT). The first step
//! pays for start-up and is reported apart; `step_s` is the fastest of the others (as the
//! transformers baseline reports its steps). With --same-batch every step trains the same
//! sequence, and the per-step losses in the output show whether the steps learn. One JSON
//! object per length goes to stdout; with --profile, where the time of the steps after the
//! first went (every stage timed one by one, so the steps are slower) and the most device
//! memory in use at the end of each stage go to stderr.

#[path = "../bench_args.rs"]
mod bench_args;

use anyhow::{Context, Result, bail};
use clap::Parser;
use lamar_model::qwen35;
use lamar_model::qwen35::stopwatch::Stopwatch;
use lamar_model::train::data::Example;
use lamar_model::train::lora::{ALL_LINEAR, AdapterProducts, LoraShape, TrainableLora};
use lamar_model::train::loss::LossKind;
use lamar_model::train::trainer::{TrainConfig, train};
use rand::{RngExt, SeedableRng};
use std::path::PathBuf;
use std::sync::Arc;

/// Time LoRA training steps of a Qwen3.5 snapshot at given sequence lengths.
#[derive(Parser, Debug)]
struct Args {
    /// The snapshot folder (config.json and safetensors; no tokenizer needed).
    #[arg(long)]
    model: PathBuf,
    /// Sequence lengths in tokens, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2048")]
    lengths: Vec<usize>,
    /// Optimiser steps per length (the first is start-up); at least 2.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// cuda or cpu.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Precision of the frozen model: bf16 or f32.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// LoRA rank.
    #[arg(long, default_value_t = 256)]
    rank: usize,
    /// LoRA alpha (rank-stabilised scaling).
    #[arg(long, default_value_t = 32.0)]
    alpha: f64,
    /// dft or ce.
    #[arg(long, default_value = "dft")]
    loss: String,
    /// Print where the time went (stages timed one by one).
    #[arg(long)]
    profile: bool,
    /// Let f32 matrix products (the LoRA products) use TF32 tensor cores on CUDA.
    #[arg(long)]
    tf32: bool,
    /// lamar's CUDA kernels to use: all, none (candle operations: the reference), or a list
    /// of all, deltanet, attention, norm, mlp, gemv, chunks, flash, training-deltanet (training
    /// uses chunks, flash and training-deltanet in its tracked passes, all of them in the
    /// forward pass it keeps).
    #[arg(long, default_value = "all")]
    kernels: String,
    /// The dtype of the adapter's products: f32 (as PEFT) or model (the model's dtype, bf16:
    /// tensor cores, half the bytes; the weights and gradients stay f32).
    #[arg(long, default_value = "f32")]
    adapter_products: AdapterProducts,
    /// Train every step on the same random sequence (the losses, printed per step, must
    /// fall: the steps learn), instead of a new one per step.
    #[arg(long)]
    same_batch: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.steps < 2 {
        bail!("--steps must be at least 2 (the first step is start-up)");
    }
    let device = bench_args::device(&args.device)?;
    let dtype = bench_args::dtype(&args.dtype)?;
    let loss = match args.loss.as_str() {
        "dft" => LossKind::Dft,
        "ce" => LossKind::CrossEntropy,
        other => bail!("--loss {other}: expected dft or ce"),
    };
    candle_core::cuda::set_gemm_reduced_precision_f32(args.tf32);
    let mut model = qwen35::load(&args.model, dtype, &device)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let stopwatch = args.profile.then(|| Arc::new(Stopwatch::new(&device)));
    model.set_stopwatch(stopwatch.clone());
    model.set_fused_kernels(
        qwen35::FusedKernels::parse(&args.kernels)
            .map_err(|e| anyhow::anyhow!("--kernels: {e}"))?,
    );
    let vocab = model.config().vocab_size as u32;
    let shape = LoraShape {
        rank: args.rank,
        alpha: args.alpha,
        rslora: true,
    };
    for &len in &args.lengths {
        if len < 2 {
            bail!("--lengths: {len} tokens leave no response");
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(len as u64);
        let mut example = || Example {
            ids: (0..len).map(|_| rng.random_range(0..vocab)).collect(),
            response_start: len / 2,
            truncated: false,
        };
        let examples: Vec<Example> = if args.same_batch {
            vec![example(); args.steps]
        } else {
            (0..args.steps).map(|_| example()).collect()
        };
        let lora = Arc::new(
            TrainableLora::init(&model, &ALL_LINEAR, shape, 3407, &device)?
                .with_products(args.adapter_products),
        );
        let config = TrainConfig {
            loss,
            accumulation: 1,
            epochs: 1,
            ..TrainConfig::default()
        };
        let (mut seconds, mut losses, mut cross_entropies) = (Vec::new(), Vec::new(), Vec::new());
        train(&model, &lora, &examples, &config, None, |s| {
            seconds.push(s.seconds);
            losses.push(s.loss);
            cross_entropies.push(s.cross_entropy);
            // The first step also loads kernels and fills the memory pool: the profile is of
            // the steps after it.
            if seconds.len() == 1
                && let Some(watch) = &stopwatch
            {
                watch.take();
            }
        })?;
        if let Some(watch) = &stopwatch {
            let mut stages = watch.take_with_memory();
            stages.sort_by(|a, b| b.1.total_cmp(&a.1));
            let profiled = seconds.len().saturating_sub(1);
            for (stage, s, n, used) in stages {
                let used_mib = used.map(|b| b / (1 << 20));
                eprintln!(
                    "{}",
                    serde_json::json!({"len": len, "stage": stage, "seconds": s, "times": n,
                        "profiled_steps": profiled, "max_in_use_mib": used_mib})
                );
            }
        }
        let first = seconds[0];
        let mut rest = seconds[1..].to_vec();
        rest.sort_by(f64::total_cmp);
        let fastest = rest[0];
        println!(
            "{}",
            serde_json::json!({
                "len": len,
                "kernels": args.kernels,
                "response_tokens": len - len / 2,
                "first_step_s": first,
                "step_s": fastest,
                "steps": rest,
                "tok_per_s": len as f64 / fastest,
                "same_batch": args.same_batch,
                "losses": losses,
                "cross_entropies": cross_entropies,
                "lora_parameters": lora
                    .named_vars()
                    .iter()
                    .map(|(_, v)| v.elem_count())
                    .sum::<usize>(),
            })
        );
    }
    Ok(())
}
