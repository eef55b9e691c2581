//! `lamar offsets`: tagged model outputs → predictions JSON.

use crate::progress::bar;
use anyhow::{Context, Result, bail};
use clap::Args;
use lamar_core::codec::{DecodeOptions, DroppedSpan, decision_text, decode};
use lamar_core::formats::predictions::{PredictedSpan, PredictionFile, write_predictions};
use lamar_core::formats::raw_text::read_raw_text_of;
use lamar_core::formats::rows::{ModelOutputRow, read_model_outputs};
use lamar_core::formats::write_atomic;
use lamar_core::text::{CharIndex, prefix_chars};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Turn tagged model outputs into a predictions JSON (the reference's pred_to_offset).
///
/// Each row's `predicted` text is parsed for the nine category tags (unknown and broken tags are
/// tolerated) and every tagged span is placed in RAW_TEXT_DIR/<file_id>.txt: directly when the
/// model reproduced the document, otherwise by the reference's cascade (exact,
/// whitespace-normalised, case-insensitive, prefix, suffix, fuzzy). Spans that cannot be placed are listed
/// in --dropped with the reason (empty_span, model_typo, truncated, not_in_text). The output has
/// one entry per input row, spans sorted by (start, end).
#[derive(Args, Debug)]
pub struct OffsetsArgs {
    /// Model outputs: JSONL, or CSV with a header (`.csv`); needs `file_id` and `predicted`.
    #[arg(long)]
    pub input: PathBuf,
    /// Folder of raw text files (`<file_id>.txt`).
    #[arg(long)]
    pub raw_text_dir: PathBuf,
    /// Predictions JSON to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the spans that could not be placed, as CSV.
    #[arg(long)]
    pub dropped: Option<PathBuf>,
    /// Add each span's text, widened to whole words, as `decision`.
    #[arg(long)]
    pub keep_decision: bool,
    /// Align every span by its text, as the reference does, even when the output reproduces the
    /// document (slower; loses exact positions of repeated text).
    #[arg(long)]
    pub no_verbatim: bool,
    /// Reproduce LAMAR's pred_to_offset exactly, quirks included (no verbatim shortcut, first
    /// occurrences for normalised/prefix/suffix matches, unmapped case-insensitive offsets).
    #[arg(long, conflicts_with = "no_verbatim")]
    pub reference: bool,
}

/// Totals over a decoded file.
#[derive(Debug, Default)]
pub struct DecodeTally {
    /// Placed spans per alignment method.
    pub placed: BTreeMap<String, usize>,
    /// Dropped spans per reason.
    pub dropped: BTreeMap<String, usize>,
    /// Tags left open.
    pub unclosed: usize,
    /// Closing tags without an open tag.
    pub unmatched_closes: usize,
    /// Tag-shaped tokens that are not category tags.
    pub unknown_tags: usize,
}

impl DecodeTally {
    /// One line per non-zero count.
    pub fn lines(&self) -> Vec<String> {
        let join = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let placed = if self.placed.is_empty() {
            "none".to_string()
        } else {
            join(&self.placed)
        };
        let mut out = vec![format!("placed: {placed}")];
        if !self.dropped.is_empty() {
            out.push(format!("dropped: {}", join(&self.dropped)));
        }
        if self.unclosed + self.unmatched_closes + self.unknown_tags > 0 {
            out.push(format!(
                "markup: {} unclosed tags, {} unmatched closing tags, {} unknown tags",
                self.unclosed, self.unmatched_closes, self.unknown_tags
            ));
        }
        out
    }
}

/// Everything decoding a file of model outputs produced.
pub struct DecodedFile {
    /// One entry per input row.
    pub predictions: Vec<PredictionFile>,
    /// Spans that could not be placed, with their document ids.
    pub dropped: Vec<(String, DroppedSpan)>,
    /// Totals.
    pub tally: DecodeTally,
}

/// Decodes model outputs against a raw text folder.
pub fn decode_outputs(
    rows: &[ModelOutputRow],
    raw_text_dir: &Path,
    options: &DecodeOptions,
    keep_decision: bool,
) -> Result<DecodedFile> {
    let mut texts: HashMap<&str, String> = HashMap::new();
    let mut predictions = Vec::with_capacity(rows.len());
    let mut dropped = Vec::new();
    let mut tally = DecodeTally::default();
    let progress = bar(rows.len(), "decoding");
    for row in rows {
        progress.inc(1);
        if !texts.contains_key(row.file_id.as_str()) {
            let text = read_raw_text_of(raw_text_dir, &row.file_id)
                .with_context(|| format!("raw text of document {}", row.file_id))?;
            texts.insert(&row.file_id, text);
        }
        let raw = &texts[row.file_id.as_str()];
        let decoded = decode(&row.predicted, raw, options);
        let index = CharIndex::new(raw);
        let spans = decoded
            .spans
            .iter()
            .map(|a| {
                *tally.placed.entry(a.method.to_string()).or_default() += 1;
                let mut p = PredictedSpan::from(a.span);
                if keep_decision {
                    p.decision = Some(decision_text(&index, a.span).to_string());
                }
                p
            })
            .collect();
        predictions.push(PredictionFile {
            file_name: row.file_id.clone(),
            predictions: spans,
        });
        tally.unclosed += decoded.diagnostics.unclosed.len();
        tally.unmatched_closes += decoded.diagnostics.unmatched_closes;
        tally.unknown_tags += decoded.diagnostics.unknown_tags;
        for d in decoded.dropped {
            *tally.dropped.entry(d.reason.to_string()).or_default() += 1;
            dropped.push((row.file_id.clone(), d));
        }
    }
    progress.finish_and_clear();
    Ok(DecodedFile {
        predictions,
        dropped,
        tally,
    })
}

/// The dropped-spans CSV: `file_id, category, reason, span_text, closest` (texts cut to 80).
pub fn write_dropped(path: &Path, dropped: &[(String, DroppedSpan)]) -> Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer.write_record(["file_id", "category", "reason", "span_text", "closest"])?;
    for (id, d) in dropped {
        let category = d.category.id().to_string();
        let closest = d
            .closest
            .as_deref()
            .map(|c| prefix_chars(c, 80))
            .unwrap_or("");
        writer.write_record([
            id.as_str(),
            &category,
            d.reason.as_str(),
            prefix_chars(&d.text, 80),
            closest,
        ])?;
    }
    let bytes = writer
        .into_inner()
        .context("finishing the dropped-spans CSV")?;
    write_atomic(path, &bytes)?;
    Ok(())
}

/// Runs `lamar offsets`.
pub fn run(args: &OffsetsArgs) -> Result<()> {
    let rows = read_model_outputs(&args.input)?;
    if rows.is_empty() {
        bail!("{}: holds no model outputs", args.input.display());
    }
    let options = DecodeOptions {
        verbatim: !args.no_verbatim,
        ..DecodeOptions::default()
    };
    let DecodedFile {
        predictions,
        dropped,
        tally,
    } = decode_outputs(&rows, &args.raw_text_dir, &options, args.keep_decision)?;
    write_predictions(&args.out, &predictions)?;
    if let Some(path) = &args.dropped {
        write_dropped(path, &dropped).with_context(|| format!("writing {}", path.display()))?;
    }
    let spans: usize = predictions.iter().map(|p| p.predictions.len()).sum();
    println!(
        "wrote {spans} spans for {} documents to {}",
        predictions.len(),
        args.out.display()
    );
    for line in tally.lines() {
        println!("  {line}");
    }
    Ok(())
}
