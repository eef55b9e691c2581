//! Retrieval at LAMAR's size (451 MedDec documents against ~60,000 unlabeled notes, 2,560-d
//! embeddings, 100 candidates each) on random unit vectors: the wgpu path with f32 and f16
//! storage (upload and search timed apart, the search's best of --repeats after one warm-up,
//! then one more search timed stage by stage)
//! and the CPU path on every core (groups of queries, each reading the corpus once), with how often the GPU's candidate lists equal the CPU's.
//! One JSON object per measurement to stdout. Baselines (NumPy, PyTorch) on the same shapes:
//! `gpu/tools/retrieval_baselines.py`; both in one call: `gpu/tools/gpu-retrieval-bench.sh`.

use anyhow::Result;
use clap::Parser;
use lamar_core::pseudo::retrieve::{
    Embeddings, Neighbour, query_groups, random_unit_rows, top_candidates,
};
use lamar_model::retrieve::{GpuRetriever, Storage};
use rayon::prelude::*;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Query rows.
    #[arg(long, default_value_t = 451)]
    queries: usize,
    /// Corpus rows.
    #[arg(long, default_value_t = 60_000)]
    corpus: usize,
    /// Values per row.
    #[arg(long, default_value_t = 2560)]
    dim: usize,
    /// Candidates per query.
    #[arg(long, default_value_t = 100)]
    candidates: usize,
    /// Timed searches per storage (after one warm-up; the GPU's clocks settle over the first).
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Leave the CPU path out.
    #[arg(long)]
    no_cpu: bool,
}

fn same_lists(a: &[Vec<Neighbour>], b: &[Vec<Neighbour>], first: usize) -> f64 {
    let equal = a
        .iter()
        .zip(b)
        .filter(|(x, y)| {
            x.iter()
                .take(first)
                .map(|n| n.index)
                .eq(y.iter().take(first).map(|n| n.index))
        })
        .count();
    equal as f64 / a.len().max(1) as f64
}

fn main() -> Result<()> {
    let args = Args::parse();
    let q = random_unit_rows(args.queries, args.dim, 1);
    let c = random_unit_rows(args.corpus, args.dim, 2);
    let queries = Embeddings::new(&q, args.dim).expect("whole rows");
    let corpus = Embeddings::new(&c, args.dim).expect("whole rows");
    let cpu = if args.no_cpu {
        None
    } else {
        let started = Instant::now();
        let found: Vec<Vec<Neighbour>> = query_groups(queries, rayon::current_num_threads())
            .into_par_iter()
            .flat_map_iter(|group| top_candidates(group, corpus, args.candidates))
            .collect();
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({"path": "cpu", "threads": rayon::current_num_threads(),
                "queries": args.queries, "corpus": args.corpus, "dim": args.dim,
                "search_s": seconds})
        );
        Some(found)
    };
    let gpu = GpuRetriever::new()?;
    for storage in [Storage::F32, Storage::F16] {
        let started = Instant::now();
        let uploaded = gpu.upload(corpus, storage)?;
        let upload_s = started.elapsed().as_secs_f64();
        let mut found = gpu.top_candidates(&uploaded, queries, args.candidates)?;
        let mut best = f64::INFINITY;
        for _ in 0..args.repeats {
            let started = Instant::now();
            found = gpu.top_candidates(&uploaded, queries, args.candidates)?;
            best = best.min(started.elapsed().as_secs_f64());
        }
        // Where the time goes: the same search with a wait after each stage.
        let (_, stages) = gpu.top_candidates_timed(&uploaded, queries, args.candidates)?;
        let flops = 2.0 * (args.queries * args.corpus * args.dim) as f64;
        let mut row = serde_json::json!({"path": "wgpu", "adapter": gpu.adapter(),
            "storage": format!("{storage:?}"), "queries": args.queries, "corpus": args.corpus,
            "dim": args.dim, "upload_s": upload_s, "search_s": best,
            "tflops": flops / best / 1e12, "blocks": uploaded.blocks(),
            "stages": stages, "product_tflops": flops / stages.product_s / 1e12});
        if let Some(cpu) = &cpu {
            row["same_candidates_as_cpu"] = same_lists(&found, cpu, args.candidates).into();
            row["same_top5_as_cpu"] = same_lists(&found, cpu, 5).into();
        }
        println!("{row}");
    }
    Ok(())
}
