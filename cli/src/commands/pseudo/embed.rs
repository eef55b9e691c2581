//! `lamar pseudo embed`: the hashed embedder, or Qwen3-Embedding in batches with a resumable
//! partial file.

use crate::commands::infer::{DeviceChoice, DtypeChoice, device, dtype};
use anyhow::{Context, Result, bail};
use clap::Args;
use lamar_core::pseudo::embeddings::{EmbeddingFile, Note, hashed_embedding, read_notes};
use lamar_core::pseudo::partial::PartialEmbeddings;
use lamar_model::embed::Qwen3Embedder;
use std::path::PathBuf;

/// Which embedder.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedderChoice {
    /// lamar's dependency-free embedder: a signed hashed bag of words (sublinear counts),
    /// L2-normalised; no model weights needed.
    Hashed,
    /// Qwen3-Embedding (the reference's Qwen3-Embedding-4B, or any size) from a local
    /// snapshot (--model): the last token's hidden state, L2-normalised, no instruction.
    Qwen3,
}

/// Embed notes (LAMAR §8.2) into an embeddings file for `lamar pseudo retrieve`.
///
/// --input is JSON Lines with `file_id` and `text` (`lamar pseudo extract`) or `raw_text`
/// (`lamar tag`'s rows). --out is safetensors: `embeddings`, f32 [notes, dim], L2-normalised,
/// with the ids and the embedder's name in the header (Python: safetensors.numpy.load_file).
///
/// --embedder qwen3 runs a Qwen3-Embedding snapshot (--model: config.json, safetensors,
/// tokenizer.json) as the reference does with sentence-transformers: the tokenizer appends the
/// end-of-text token, the last token's state is the embedding, no instruction. Notes are
/// batched by length (longest first, so a batch too large for the GPU shows at once); each
/// finished batch goes to OUT.partial, so a killed run loses one batch and a rerun continues
/// where it stopped. --embedder hashed needs no weights.
#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Notes, JSON Lines.
    #[arg(long)]
    pub input: PathBuf,
    /// The embeddings file to write (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// The embedder.
    #[arg(long, value_enum, default_value_t = EmbedderChoice::Hashed)]
    pub embedder: EmbedderChoice,
    /// Dimensions of the hashed embedder.
    #[arg(long, default_value_t = 1024)]
    pub dim: usize,
    /// Keep only notes whose description is this (the reference embeds `Report`s, not
    /// addenda); notes without a description are kept.
    #[arg(long)]
    pub description: Option<String>,
    /// The Qwen3-Embedding snapshot folder (qwen3).
    #[arg(long, required_if_eq("embedder", "qwen3"))]
    pub model: Option<PathBuf>,
    /// Where to run (qwen3): cuda needs a binary built with `--features cuda`.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Weight precision (qwen3; auto: bf16 on CUDA, f32 on the CPU).
    #[arg(long, value_enum, default_value_t = DtypeChoice::Auto)]
    pub dtype: DtypeChoice,
    /// Notes per batch at most (qwen3; the reference's is 8).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Padded tokens per batch at most (qwen3): long notes go in smaller batches.
    #[arg(long, default_value_t = 65_536)]
    pub batch_tokens: usize,
    /// Tokens per note at most (qwen3; longer notes are cut, the end-of-text token kept).
    #[arg(long, default_value_t = 32_768)]
    pub max_tokens: usize,
}

/// Runs `lamar pseudo embed`.
pub fn run(args: &EmbedArgs) -> Result<()> {
    let mut notes = read_notes(&args.input)?;
    if let Some(wanted) = &args.description {
        notes.retain(|n| n.description.as_ref().is_none_or(|d| d == wanted));
    }
    let file = match args.embedder {
        EmbedderChoice::Hashed => {
            let file = hashed(args, notes)?;
            file.write(&args.out)?;
            file
        }
        // Writes the file itself, then removes its partial file.
        EmbedderChoice::Qwen3 => qwen3(args, notes)?,
    };
    println!(
        "{} notes embedded ({}) into {}",
        file.ids.len(),
        file.embedder,
        args.out.display()
    );
    Ok(())
}

fn hashed(args: &EmbedArgs, notes: Vec<Note>) -> Result<EmbeddingFile> {
    if args.dim == 0 {
        bail!("--dim must be at least 1");
    }
    let bar = crate::progress::bar(notes.len(), "embed");
    let mut data = Vec::with_capacity(notes.len() * args.dim);
    for note in &notes {
        data.extend(hashed_embedding(&note.text, args.dim));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(EmbeddingFile {
        ids: notes.into_iter().map(|n| n.file_id).collect(),
        dim: args.dim,
        data,
        embedder: format!("lamar-hashed-{}", args.dim),
    })
}

/// Batches of notes (indices into `lengths`), longest first: at most `batch` notes and
/// `batch_tokens` padded tokens each (a note longer than that alone).
pub fn length_batches(lengths: &[usize], batch: usize, batch_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for k in order {
        match batches.last_mut() {
            // Longest first: the batch's first note sets its padded length.
            Some(last)
                if last.len() < batch && (last.len() + 1) * lengths[last[0]] <= batch_tokens =>
            {
                last.push(k)
            }
            _ => batches.push(vec![k]),
        }
    }
    batches
}

fn qwen3(args: &EmbedArgs, notes: Vec<Note>) -> Result<EmbeddingFile> {
    if args.batch == 0 || args.max_tokens == 0 {
        bail!("--batch and --max-tokens must be at least 1");
    }
    let model = args
        .model
        .as_ref()
        .context("--embedder qwen3 needs --model")?;
    let device = device(args.device)?;
    let dtype = dtype(args.dtype, &device);
    let embedder = Qwen3Embedder::load(model, dtype, &device, args.max_tokens)?;
    let name = format!(
        "qwen3-embedding:{}",
        model
            .canonicalize()
            .unwrap_or_else(|_| model.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut partial = PartialEmbeddings::open(&args.out, &name, embedder.dim())?;
    let mut todo: Vec<&Note> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for note in &notes {
        if !partial.done.contains_key(&note.file_id) && seen.insert(note.file_id.as_str()) {
            todo.push(note);
        }
    }
    if todo.len() < notes.len() {
        eprintln!(
            "{} of {} notes already embedded in {}",
            notes.len() - todo.len(),
            notes.len(),
            PartialEmbeddings::path_for(&args.out).display()
        );
    }
    let tokens: Vec<Vec<u32>> = todo
        .iter()
        .map(|n| embedder.tokenize(&n.text))
        .collect::<Result<_, _>>()?;
    let lengths: Vec<usize> = tokens.iter().map(Vec::len).collect();
    let bar = crate::progress::bar(todo.len(), "embed");
    let started = std::time::Instant::now();
    let mut embedded_tokens = 0usize;
    for batch in length_batches(&lengths, args.batch, args.batch_tokens) {
        let ids: Vec<Vec<u32>> = batch.iter().map(|&k| tokens[k].clone()).collect();
        let rows = embedder
            .embed_tokens(&ids)
            .with_context(|| format!("embedding note {}", todo[batch[0]].file_id))?;
        let named: Vec<(String, Vec<f32>)> = batch
            .iter()
            .zip(rows)
            .map(|(&k, row)| (todo[k].file_id.clone(), row))
            .collect();
        partial.record(&named)?;
        embedded_tokens += batch.iter().map(|&k| lengths[k]).sum::<usize>();
        bar.inc(batch.len() as u64);
        bar.set_message(format!(
            "{:.0} tokens/s",
            embedded_tokens as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ));
    }
    bar.finish_and_clear();
    let mut data = Vec::with_capacity(notes.len() * embedder.dim());
    for note in &notes {
        data.extend_from_slice(&partial.done[&note.file_id]);
    }
    let file = EmbeddingFile {
        ids: notes.into_iter().map(|n| n.file_id).collect(),
        dim: embedder.dim(),
        data,
        embedder: name,
    };
    // The embeddings file first: the partial one goes only once the output is in place.
    file.write(&args.out)?;
    partial.remove()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::length_batches;

    #[test]
    fn batches_are_longest_first_within_both_limits() {
        let lengths = [5, 100, 7, 100, 3, 60, 2000];
        let batches = length_batches(&lengths, 2, 250);
        assert_eq!(batches, vec![vec![6], vec![1, 3], vec![5, 2], vec![0, 4]]);
        for b in &batches {
            let longest = b.iter().map(|&k| lengths[k]).max().unwrap();
            assert!(b.len() == 1 || b.len() * longest <= 250);
        }
    }
}
