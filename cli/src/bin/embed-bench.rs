//! Qwen3-Embedding throughput at full size: batches of random token ids through
//! `lamar_model::embed::Qwen3Embedder` (Qwen3's layers, flash attention on CUDA, last-token pooling, L2),
//! the first batch reported apart as warm-up, then tokens per second over the others. The ids
//! and the first timed batch's embeddings go to --dump (JSON) so that the transformers
//! baseline (`gpu/tools/transformers_qwen3_embedding.py`) embeds the same ids and compares.
//! Both in one call: `gpu/tools/gpu-embed-bench.sh`.

#[path = "../bench_args.rs"]
mod bench_args;

use anyhow::{Context, Result};
use clap::Parser;
use lamar_model::embed::Qwen3Embedder;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// The snapshot folder (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Notes per batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Tokens per note.
    #[arg(long, default_value_t = 2048)]
    tokens: usize,
    /// Timed batches (after one warm-up).
    #[arg(long, default_value_t = 4)]
    batches: usize,
    /// cuda or cpu.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// bf16 or f32.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// Where to write the ids and embeddings of the first timed batch.
    #[arg(long)]
    dump: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = bench_args::device(&args.device)?;
    let dtype = bench_args::dtype(&args.dtype)?;
    let started = Instant::now();
    let embedder = Qwen3Embedder::load(&args.model, dtype, &device, usize::MAX)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let load_s = started.elapsed().as_secs_f64();
    let vocab: u64 = {
        let text = std::fs::read_to_string(args.model.join("config.json"))?;
        let json: serde_json::Value = serde_json::from_str(&text)?;
        json["vocab_size"].as_u64().context("vocab_size")?
    };
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut batch = || -> Vec<Vec<u32>> {
        (0..args.batch)
            .map(|_| {
                (0..args.tokens)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state % vocab) as u32
                    })
                    .collect()
            })
            .collect()
    };
    let warm = batch();
    let started = Instant::now();
    embedder.embed_tokens(&warm)?;
    let warmup_s = started.elapsed().as_secs_f64();
    let mut seconds = 0.0;
    for k in 0..args.batches {
        let ids = batch();
        let started = Instant::now();
        let rows = embedder.embed_tokens(&ids)?;
        seconds += started.elapsed().as_secs_f64();
        if k == 0
            && let Some(path) = &args.dump
        {
            std::fs::write(
                path,
                serde_json::to_string(&serde_json::json!({"ids": ids, "embeddings": rows}))?,
            )?;
        }
    }
    let tokens = (args.batch * args.tokens * args.batches) as f64;
    println!(
        "{}",
        serde_json::json!({"path": "lamar", "dtype": args.dtype, "batch": args.batch,
            "tokens": args.tokens, "batches": args.batches, "load_s": load_s,
            "warmup_s": warmup_s, "seconds": seconds, "tok_per_s": tokens / seconds})
    );
    Ok(())
}
