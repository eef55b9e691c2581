//! `lamar offsets`: tagged model outputs → predictions JSON.

use crate::progress::bar;
use anyhow::{Result, bail};
use clap::Args;
use lamar_core::codec::{DecodeOptions, DecodedFile, decode_outputs, dropped_csv};
use lamar_core::formats::FormatError;
use lamar_core::formats::predictions::write_predictions;
use lamar_core::formats::raw_text::{raw_text_path, read_raw_text_of};
use lamar_core::formats::rows::{ModelOutputRow, read_model_outputs};
use lamar_core::formats::windows::parse_window_id;
use lamar_core::formats::write_atomic;
use std::path::{Path, PathBuf};

/// Turn tagged model outputs into a predictions JSON (the reference's pred_to_offset).
///
/// Each row's `predicted` text is parsed for the nine category tags (unknown and broken tags are
/// tolerated) and every tagged span is placed in RAW_TEXT_DIR/<file_id>.txt: directly when the
/// model reproduced the document, otherwise by the reference's cascade (exact,
/// whitespace-normalised, case-insensitive, prefix, suffix, fuzzy). Spans that cannot be placed are listed
/// in --dropped with the reason (empty_span, model_typo, truncated, not_in_text). The output has
/// one entry per input row, spans sorted by (start, end); rows of windows (`ID@START-END`, as
/// `lamar infer --window-chars` writes them) are placed in that range of ID.txt and joined into
/// one entry for ID.
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

impl OffsetsArgs {
    /// The decoding options the flags ask for: the reference's exact behaviour, text alignment
    /// for every span, or lamar's default (verbatim shortcut).
    pub fn decode_options(&self) -> DecodeOptions {
        if self.reference {
            DecodeOptions::reference()
        } else {
            DecodeOptions {
                verbatim: !self.no_verbatim,
                ..DecodeOptions::default()
            }
        }
    }
}

/// The raw text of `id`: its file, or for a window `ID@START-END` (`lamar infer
/// --window-chars`) without a file of its own, that range of `ID`'s text.
fn raw_text_of(raw_text_dir: &Path, id: &str) -> Result<String, FormatError> {
    if let Some((doc, start, end)) = parse_window_id(id)
        && !raw_text_path(raw_text_dir, id).exists()
    {
        let text = read_raw_text_of(raw_text_dir, doc)?;
        return Ok(text.chars().skip(start).take(end - start).collect());
    }
    read_raw_text_of(raw_text_dir, id)
}

/// Decodes `rows` against the raw texts in `raw_text_dir`, with a progress bar; windows of a
/// document (`ID@START-END`) are joined into it.
pub fn decode_file(
    rows: &[ModelOutputRow],
    raw_text_dir: &Path,
    options: &DecodeOptions,
    keep_decision: bool,
) -> Result<DecodedFile> {
    let progress = bar(rows.len(), "decoding");
    let decoded = decode_outputs(
        rows,
        |id| raw_text_of(raw_text_dir, id),
        options,
        keep_decision,
        || progress.inc(1),
    )?;
    progress.finish_and_clear();
    Ok(decoded.join_windows())
}

/// Runs `lamar offsets`.
pub fn run(args: &OffsetsArgs) -> Result<()> {
    let rows = read_model_outputs(&args.input)?;
    if rows.is_empty() {
        bail!("{}: holds no model outputs", args.input.display());
    }
    let DecodedFile {
        predictions,
        dropped,
        tally,
    } = decode_file(
        &rows,
        &args.raw_text_dir,
        &args.decode_options(),
        args.keep_decision,
    )?;
    write_predictions(&args.out, &predictions)?;
    if let Some(path) = &args.dropped {
        write_atomic(path, &dropped_csv(&dropped))?;
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
