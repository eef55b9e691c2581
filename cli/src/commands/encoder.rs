//! `lamar train encoder` and `lamar classify`: the encoder baseline (a BERT/RoBERTa token
//! classifier over BIO labels), fine-tuned and used to tag.

use super::infer::{DeviceChoice, device};
use anyhow::{Context, Result};
use clap::Args;
use lamar_core::formats::inference::read_documents;
use lamar_core::formats::predictions::{PredictionFile, write_predictions};
use lamar_core::formats::rows::read_training_rows;
use lamar_model::encoder::predict::EncoderTagger;
use lamar_model::encoder::train::{EncoderJob, EncoderTrainConfig, LabelledText};
use std::path::PathBuf;

/// Fine-tune an encoder (BERT, RoBERTa, XLM-R) as a token classifier: the shared task's
/// encoder baseline (lamar-spec §9), a fourth voice for the ensemble.
///
/// Each row of --data (`lamar tag`'s rows: `raw_text` and `gold_offsets`) is tokenized with the
/// checkpoint's tokenizer.json and labelled B/I/O per category (19 labels; a span whose tokens
/// already hold a B is left out, since BIO cannot nest). Every step trains on a batch of
/// random crops of at most --max-tokens tokens, one per document, with cross-entropy; the whole
/// encoder and a fresh linear head are trained with AdamW (decoupled weight decay), a linear
/// warm-up and cosine decay. The defaults are the reference's recipe (lr 2e-5, weight decay
/// 0.001, 5 % warm-up, batch 32, 512 tokens, 250 epochs), except the epochs where noted.
/// OUT gets a transformers token-classification checkpoint (model.safetensors, config.json with
/// the labels, the tokenizer), metrics.jsonl (a line per step) and loss.svg. Checkpoints
/// (weights, optimiser, step) go to OUT/checkpoint, atomically; --resume continues a killed run
/// from the last one.
#[derive(Args, Debug)]
pub struct EncoderTrainArgs {
    /// The base checkpoint: config.json (model_type bert, roberta or xlm-roberta),
    /// *.safetensors, tokenizer.json (`lamar export tiny-encoder` writes a tiny one).
    #[arg(long)]
    pub model: PathBuf,
    /// Training rows (`lamar tag` output).
    #[arg(long)]
    pub data: PathBuf,
    /// Folder for the trained classifier.
    #[arg(long)]
    pub out: PathBuf,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-5)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.001)]
    pub weight_decay: f64,
    /// Share of the steps spent warming the learning rate up.
    #[arg(long, default_value_t = 0.05)]
    pub warmup_ratio: f64,
    /// Passes over the documents (one random crop of each per pass).
    #[arg(long, default_value_t = 250)]
    pub epochs: usize,
    /// Crops per optimiser step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Longest window in tokens, special tokens included (capped by the position embeddings).
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Seed of the head, the crops, the order and dropout.
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
    /// Where to train: cuda needs a binary built with `--features cuda`.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

/// Tag documents with a fine-tuned encoder and write MedDec predictions.
///
/// Each document of --input (JSON Lines or CSV with `file_id` and `raw_text`, e.g. `lamar tag`'s
/// rows) is read in consecutive windows of --max-tokens tokens; every token gets its most
/// likely label, and the labels of the whole document become spans (a span may cross a
/// window's edge, and one that reaches the last token is kept). --out gets the predictions in
/// the MedDec JSON that `lamar evaluate`, `lamar tune` and `lamar ensemble` read.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// The classifier `lamar train encoder` wrote.
    #[arg(long)]
    pub model: PathBuf,
    /// Documents to tag.
    #[arg(long)]
    pub input: PathBuf,
    /// Predictions file (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Longest window in tokens, special tokens included (capped by the position embeddings).
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Where to run: cuda needs a binary built with `--features cuda`.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

/// Runs `lamar train encoder`.
pub fn train(args: &EncoderTrainArgs) -> Result<()> {
    let rows = read_training_rows(&args.data)?;
    let documents: Vec<LabelledText> = rows
        .into_iter()
        .map(|row| LabelledText {
            spans: row.gold_offsets.iter().filter_map(|g| g.span()).collect(),
            id: row.file_id,
            text: row.raw_text,
        })
        .collect();
    let job = EncoderJob {
        model: args.model.clone(),
        out: args.out.clone(),
        config: EncoderTrainConfig {
            learning_rate: args.lr,
            weight_decay: args.weight_decay,
            warmup_ratio: args.warmup_ratio,
            epochs: args.epochs,
            batch_size: args.batch_size,
            max_tokens: args.max_tokens,
            seed: args.seed,
        },
        device: device(args.device)?,
        checkpoint_every: args.checkpoint_every,
        resume: args.resume,
    };
    let started = std::time::Instant::now();
    let bar = std::cell::OnceCell::new();
    let outcome = job
        .run(
            &documents,
            |total, done| {
                let checkpoint = args.out.join("checkpoint");
                let _ = bar.set(crate::progress::training(
                    total,
                    done,
                    "encoder",
                    &checkpoint,
                ));
            },
            |s| {
                if let Some(b) = bar.get() {
                    b.set_message(format!("loss {:.4} lr {:.2e}", s.loss, s.learning_rate));
                    b.inc(1);
                }
            },
        )
        .with_context(|| {
            format!(
                "training the encoder {} on {}",
                args.model.display(),
                args.data.display()
            )
        })?;
    if let Some(b) = bar.get() {
        b.finish_and_clear();
    }
    println!(
        "trained the encoder for {} steps on {} documents in {:.1} s: last loss {:.4}; \
         {} gold spans labelled, {} left out (start on no token: {}, nested or overlapping: {}); \
         classifier in {}, loss curve {}",
        outcome.last.step,
        outcome.documents,
        started.elapsed().as_secs_f64(),
        outcome.last.loss,
        outcome.placed,
        outcome.unplaced + outcome.overlapping,
        outcome.unplaced,
        outcome.overlapping,
        args.out.display(),
        outcome.curve.display()
    );
    Ok(())
}

/// Runs `lamar classify`.
pub fn classify(args: &ClassifyArgs) -> Result<()> {
    let documents = read_documents(&args.input)?;
    let device = device(args.device)?;
    let tagger = EncoderTagger::load(&args.model, args.max_tokens, &device)
        .with_context(|| format!("loading the encoder {}", args.model.display()))?;
    let bar = crate::progress::bar(documents.len(), "classify");
    let mut files = Vec::with_capacity(documents.len());
    let mut spans_total = 0;
    for doc in &documents {
        let spans = tagger
            .tag(&doc.raw_text)
            .with_context(|| format!("{}: document {}", args.input.display(), doc.file_id))?;
        spans_total += spans.len();
        files.push(PredictionFile::from_spans(doc.file_id.clone(), &spans));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_predictions(&args.out, &files)?;
    println!(
        "tagged {} documents with the encoder: {spans_total} spans in {}",
        documents.len(),
        args.out.display()
    );
    Ok(())
}
