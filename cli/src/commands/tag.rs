//! `lamar tag`: gold annotations → tagged training rows.

use crate::progress::bar;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use lamar_core::formats::gold::SkipReason;
use lamar_core::formats::rows::{is_csv, write_training_rows};
use lamar_core::formats::split::read_split;
use lamar_core::formats::training::{TrainingSet, training_set};
use lamar_core::formats::windows::windows;
use std::path::PathBuf;

/// Output format of the training rows.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// One JSON object per line; `gold_offsets` is a list of objects.
    Jsonl,
    /// The reference's CSV layout; `gold_offsets` is a JSON string.
    Csv,
}

/// Write gold annotations as tagged training rows (the reference's gt_to_tag).
///
/// For every id of the split file (sorted, with or without `.json`), reads
/// GOLD_DIR/ID.json and RAW_TEXT_DIR/ID.txt and writes a row with `file_id`, `raw_text`,
/// `gold_span` (the text with inline tags, the model's training target) and `gold_offsets`.
/// Annotations outside the nine categories, with bad offsets or outside the text are left out and
/// counted. Two crossing spans of one category come back nested after a round trip through tags;
/// they are counted too.
#[derive(Args, Debug)]
pub struct TagArgs {
    /// Folder of gold JSON files (`<id>.json`).
    #[arg(long)]
    pub gold_dir: PathBuf,
    /// Folder of raw text files (`<id>.txt`).
    #[arg(long)]
    pub raw_text_dir: PathBuf,
    /// Split file listing the document ids to write.
    #[arg(long)]
    pub split: PathBuf,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    /// Output format (default: from the extension of --out, `.csv` or JSONL otherwise).
    #[arg(long, value_enum)]
    pub format: Option<RowFormat>,
    /// Skip documents whose raw text is missing (with a warning) instead of failing.
    #[arg(long)]
    pub skip_missing: bool,
    /// Cut each document into windows of whole lines of at most this many characters (never
    /// inside a span; ids become `ID@START-END`), for quick experiments with small models.
    /// LAMAR itself trains on whole notes.
    #[arg(long)]
    pub window_chars: Option<usize>,
}

/// Runs `lamar tag`.
pub fn run(args: &TagArgs) -> Result<()> {
    let mut ids = read_split(&args.split)?;
    ids.sort();
    if ids.is_empty() {
        bail!(
            "{}: the split file lists no document ids",
            args.split.display()
        );
    }
    let progress = bar(ids.len(), "tagging");
    let TrainingSet {
        rows,
        skipped,
        crossings,
        missing,
    } = training_set(
        &args.gold_dir,
        &args.raw_text_dir,
        &ids,
        args.skip_missing,
        || progress.inc(1),
    )?;
    progress.finish_and_clear();
    let rows = match args.window_chars {
        Some(0) => bail!("--window-chars must be at least 1"),
        Some(max) => rows.iter().flat_map(|r| windows(r, max)).collect(),
        None => rows,
    };
    let out = &args.out;
    let csv = match args.format {
        Some(format) => format == RowFormat::Csv,
        None => is_csv(out),
    };
    write_training_rows(out, &rows, csv).with_context(|| format!("writing {}", out.display()))?;
    let spans: usize = rows.iter().map(|r| r.gold_offsets.len()).sum();
    println!(
        "wrote {} rows with {spans} gold spans to {}",
        rows.len(),
        out.display()
    );
    for (reason, n) in skipped {
        let why = match reason {
            SkipReason::BadOffset => "offsets that are not integers",
            SkipReason::OutOfRange => "offsets outside the text or empty",
            SkipReason::OutOfScope => "labels outside categories 1-9 (e.g. Category 10/11, TBD)",
        };
        println!("  left out {n} annotations with {why}");
    }
    if crossings > 0 {
        println!("  note: {crossings} pairs of crossing same-category spans will read back nested");
    }
    for (id, path) in &missing {
        eprintln!(
            "warning: {}: missing, document {id} skipped",
            path.display()
        );
    }
    if !missing.is_empty() {
        println!("  skipped {} documents without raw text", missing.len());
    }
    Ok(())
}
