//! `lamar pseudo retrieve`.

use anyhow::{Context, Result};
use clap::Args;
use lamar_core::pseudo::embeddings::{EmbeddingFile, read_notes};
use lamar_core::pseudo::retrieve::{
    Embeddings, greedy_unique, match_rows, query_groups, top_candidates,
};
use lamar_model::retrieve::{GpuRetriever, Storage};
use rayon::prelude::*;
use std::path::PathBuf;

/// Where retrieval runs.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrieveDevice {
    /// Exact search on every CPU core.
    Cpu,
    /// wgpu compute shaders: the same neighbours where scores are not within rounding of a
    /// tie (see `lamar_model::retrieve`).
    Gpu,
}

/// GPU storage precision.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageChoice {
    /// 32-bit floats.
    F32,
    /// 16-bit floats.
    F16,
}

/// Find each MedDec document's nearest unlabeled notes, each note given to one document at
/// most (LAMAR §8.3).
///
/// The queries (--queries: one embeddings file per split, in order; the split is the file's
/// stem) and the corpus (--corpus) are embeddings files of `lamar pseudo embed`. For every
/// query, the --candidates most similar corpus notes by cosine (ties: the lower corpus index);
/// then all (query, note) pairs, best first, are walked once: a note goes to the first query
/// that wants it and has fewer than --k. --out gets one JSON line per assignment (split,
/// query_idx, query_file_id, rank, score, ref_idx, ref_file_id). With --corpus-notes (the
/// notes file the corpus was embedded from), --inference-input writes the chosen notes as
/// `lamar infer` input (file_id, raw_text): the step the reference forgot.
#[derive(Args, Debug)]
pub struct RetrieveArgs {
    /// Embeddings of the MedDec documents, one file per split.
    #[arg(long, num_args = 1.., required = true)]
    pub queries: Vec<PathBuf>,
    /// Embeddings of the unlabeled notes.
    #[arg(long)]
    pub corpus: PathBuf,
    /// Notes per query.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Candidates per query before the unique assignment.
    #[arg(long, default_value_t = 100)]
    pub candidates: usize,
    /// The assignments, JSON Lines.
    #[arg(long)]
    pub out: PathBuf,
    /// The unlabeled notes (`lamar pseudo extract`'s output) the corpus was embedded from.
    #[arg(long, requires = "inference_input")]
    pub corpus_notes: Option<PathBuf>,
    /// Where the similarities are computed: the CPU (every core), or a GPU through wgpu
    /// (Vulkan, Metal or DX12; `WGPU_ADAPTER_NAME` picks one).
    #[arg(long, value_enum, default_value_t = RetrieveDevice::Cpu)]
    pub device: RetrieveDevice,
    /// How the GPU stores the embeddings (f16: half the memory, values rounded).
    #[arg(long, value_enum, default_value_t = StorageChoice::F32)]
    pub storage: StorageChoice,
    /// Where to write the chosen notes as `lamar infer` input.
    #[arg(long, requires = "corpus_notes")]
    pub inference_input: Option<PathBuf>,
}

/// Runs `lamar pseudo retrieve`.
pub fn run(args: &RetrieveArgs) -> Result<()> {
    let corpus = EmbeddingFile::read(&args.corpus)?;
    let mut queries: Vec<(String, String)> = Vec::new();
    let mut query_data: Vec<f32> = Vec::new();
    for path in &args.queries {
        let file = EmbeddingFile::read(path)?;
        if file.dim != corpus.dim || file.embedder != corpus.embedder {
            anyhow::bail!(
                "{}: embedded by {} ({} dimensions), but the corpus {} by {} ({}): embed both \
                 the same way",
                path.display(),
                file.embedder,
                file.dim,
                args.corpus.display(),
                corpus.embedder,
                corpus.dim
            );
        }
        let split = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        queries.extend(file.ids.iter().map(|id| (split.clone(), id.clone())));
        query_data.extend(file.data);
    }
    let dim = corpus.dim;
    let ragged = "an embeddings file with a ragged matrix";
    let q = Embeddings::new(&query_data, dim).context(ragged)?;
    let c = Embeddings::new(&corpus.data, dim).context(ragged)?;
    let candidates = match args.device {
        RetrieveDevice::Cpu => {
            let bar = crate::progress::bar(queries.len(), "retrieve");
            let groups: Vec<Vec<_>> = query_groups(q, rayon::current_num_threads())
                .into_par_iter()
                .map(|group| {
                    let found = top_candidates(group, c, args.candidates);
                    bar.inc(found.len() as u64);
                    found
                })
                .collect();
            bar.finish_and_clear();
            groups.concat()
        }
        RetrieveDevice::Gpu => {
            let gpu = GpuRetriever::new()?;
            let storage = match args.storage {
                StorageChoice::F32 => Storage::F32,
                StorageChoice::F16 => Storage::F16,
            };
            let started = std::time::Instant::now();
            let uploaded = gpu.upload(c, storage)?;
            let found = gpu.top_candidates(&uploaded, q, args.candidates)?;
            eprintln!(
                "{} queries x {} notes on {} ({storage:?} storage) in {:.2} s",
                q.rows(),
                c.rows(),
                gpu.adapter(),
                started.elapsed().as_secs_f64()
            );
            found
        }
    };
    let assigned = greedy_unique(&candidates, args.k);
    let short = assigned.iter().filter(|a| a.len() < args.k).count();
    if short > 0 {
        eprintln!("warning: {short} queries got fewer than {} notes", args.k);
    }
    let rows = match_rows(&queries, &corpus.ids, &assigned);
    let mut text = String::new();
    for row in &rows {
        text.push_str(&serde_json::to_string(row)?);
        text.push('\n');
    }
    lamar_core::formats::write_atomic(&args.out, text.as_bytes())?;
    if let (Some(notes), Some(out)) = (&args.corpus_notes, &args.inference_input) {
        let by_id: std::collections::HashMap<String, String> = read_notes(notes)?
            .into_iter()
            .map(|n| (n.file_id, n.text))
            .collect();
        let mut input = String::new();
        for row in &rows {
            let raw = by_id.get(&row.ref_file_id).with_context(|| {
                format!(
                    "{}: no note {} (is it the corpus's notes file?)",
                    notes.display(),
                    row.ref_file_id
                )
            })?;
            input.push_str(&serde_json::to_string(
                &serde_json::json!({"file_id": row.ref_file_id, "raw_text": raw}),
            )?);
            input.push('\n');
        }
        lamar_core::formats::write_atomic(out, input.as_bytes())?;
    }
    println!(
        "{} notes assigned to {} queries ({} candidates each) in {}",
        rows.len(),
        queries.len(),
        args.candidates,
        args.out.display()
    );
    Ok(())
}
