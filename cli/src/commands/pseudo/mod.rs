//! `lamar pseudo`: pseudo-labels from unlabeled notes (LAMAR's Model 3).

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use lamar_core::formats::inference::read_inference_records;
use lamar_core::formats::rows::{is_csv, read_training_rows, write_training_rows};
use lamar_core::formats::split::read_split;
use lamar_core::pseudo::explore::{explore, scatter, score_documents};
use lamar_core::pseudo::extract::{ExtractReport, extract_notes};
use lamar_core::pseudo::select::pseudo_rows;
use std::collections::HashSet;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

mod embed;
mod retrieve;

pub use embed::EmbedArgs;
pub use retrieve::RetrieveArgs;

/// Pseudo-labels from unlabeled discharge summaries.
#[derive(Subcommand, Debug)]
pub enum PseudoCommand {
    Extract(ExtractArgs),
    Embed(EmbedArgs),
    Retrieve(RetrieveArgs),
    Mix(MixArgs),
    Explore(ExploreArgs),
}

/// Choose the entropy threshold: how well the model tags the validation documents it is
/// confident about, against how many unlabeled notes each threshold keeps (LAMAR §8.4).
///
/// --val-predictions is `lamar infer`'s output on the validation documents (scored one by one
/// against --gold-dir with the LAMAR evaluator's token rule by default), --unlabeled-predictions
/// its output on the retrieved unlabeled notes. For each --quantiles value of the validation
/// entropies: the threshold, the validation documents at or below it with their mean span F1,
/// token F1 and base, and the unlabeled notes the same threshold keeps; then Spearman's ρ of
/// entropy against each score. Printed, and written to OUT_DIR/exploration.json, every
/// document's scores to OUT_DIR/scores.jsonl, and a scatter plot of entropy against base with
/// the thresholds to OUT_DIR/exploration.svg. Then `lamar pseudo mix --quantile Q`.
#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// `lamar infer`'s output on the validation documents.
    #[arg(long)]
    pub val_predictions: PathBuf,
    /// Gold JSON files of the validation documents.
    #[arg(long)]
    pub gold_dir: PathBuf,
    /// `lamar infer`'s output on the unlabeled notes.
    #[arg(long)]
    pub unlabeled_predictions: PathBuf,
    /// Quantiles of the validation entropies to try.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.10,0.15,0.20,0.25,0.30,0.5,0.75"
    )]
    pub quantiles: Vec<f64>,
    /// How overlapping spans label tokens: lamar (the LAMAR evaluator's, as the reference
    /// explores) or official.
    #[arg(long, default_value = "lamar")]
    pub token_f1: lamar_core::scorer::TokenF1Rule,
    /// Folder for exploration.json, scores.jsonl and exploration.svg.
    #[arg(long)]
    pub out_dir: PathBuf,
}

/// Mix the model's most confident pseudo-labels into the training data (LAMAR §8.4, Model 3).
///
/// --predictions is `lamar infer`'s output on the retrieved unlabeled notes (JSON Lines or
/// CSV: file_id, raw_text, predicted, entropy). The notes whose entropy (mean negative
/// log-likelihood; lower is more confident) is at most the --quantile of all of them (pandas'
/// linear interpolation; LAMAR used 0.10) become training rows after --train's, and the mix is
/// written to --out for `lamar train dft`. Each pseudo row's target is the model's tags
/// re-anchored in the note (decoded, then written back into the raw text), in `gold_span`:
/// the reference left it in `predicted`, so its trainer saw the literal "nan". --quantile 0 keeps
/// the most confident note(s) (the reference treated 0 as not given).
#[derive(Args, Debug)]
pub struct MixArgs {
    /// The real training rows (`lamar tag`).
    #[arg(long)]
    pub train: PathBuf,
    /// `lamar infer`'s output on the unlabeled notes.
    #[arg(long)]
    pub predictions: PathBuf,
    /// The entropy quantile in [0, 1] at or below which notes are kept.
    #[arg(long, default_value_t = 0.10)]
    pub quantile: f64,
    /// The mixed training rows (JSON Lines, or CSV by extension).
    #[arg(long)]
    pub out: PathBuf,
}

/// Extract the unlabeled discharge summaries from MIMIC-III's NOTEEVENTS.csv (LAMAR §8.1).
///
/// Reads the file as a stream (plain or gzipped: memory stays flat on the 4 GB file) and keeps
/// the rows whose CATEGORY is "Discharge summary", leaving out the MedDec documents listed in
/// the --exclude split files. Each kept note becomes a line of --out (JSON Lines: file_id
/// `SUBJECT_ID_HADM_ID_ROW_ID` as MedDec names documents, description, text). Rows that cannot
/// be used (no HADM_ID, an id that is not an integer, a malformed record, text that is not
/// UTF-8) are skipped and reported with their line. The output is written to a temporary file
/// and renamed when complete.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// MIMIC-III's NOTEEVENTS.csv, or NOTEEVENTS.csv.gz.
    #[arg(long)]
    pub noteevents: PathBuf,
    /// Split files (one document id per line) whose documents are left out: MedDec's train,
    /// val and test.
    #[arg(long, num_args = 1..)]
    pub exclude: Vec<PathBuf>,
    /// The unlabeled notes, JSON Lines.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `lamar pseudo …`.
pub fn run(command: &PseudoCommand) -> Result<()> {
    match command {
        PseudoCommand::Extract(args) => extract(args),
        PseudoCommand::Embed(args) => embed::run(args),
        PseudoCommand::Retrieve(args) => retrieve::run(args),
        PseudoCommand::Mix(args) => mix(args),
        PseudoCommand::Explore(args) => explore_thresholds(args),
    }
}

/// A reader that moves a progress bar by the bytes it reads.
struct Counted<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// The file as a byte stream: gunzipped when it starts with gzip's magic bytes.
fn open(path: &Path, bar: indicatif::ProgressBar) -> Result<Box<dyn Read>> {
    let mut file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut magic = [0u8; 2];
    let gzipped = file
        .read(&mut magic)
        .map(|n| n == 2 && magic == [0x1f, 0x8b])?;
    use std::io::Seek;
    file.rewind()?;
    let counted = Counted { inner: file, bar };
    let buffered = std::io::BufReader::with_capacity(1 << 20, counted);
    Ok(if gzipped {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    })
}

fn extract(args: &ExtractArgs) -> Result<()> {
    let mut exclude = HashSet::new();
    for path in &args.exclude {
        exclude.extend(read_split(path)?);
    }
    let size = std::fs::metadata(&args.noteevents)
        .with_context(|| format!("{}", args.noteevents.display()))?
        .len();
    let bar = crate::progress::bytes(size, "extract");
    let input = open(&args.noteevents, bar.clone())?;
    let partial = args.out.with_extension("jsonl.partial");
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    let file = std::fs::File::create(&partial).with_context(|| format!("{}", partial.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let started = std::time::Instant::now();
    let report = extract_notes(input, &exclude, |note| {
        serde_json::to_writer(&mut out, &note)?;
        out.write_all(b"\n")
    })
    .with_context(|| format!("{}", args.noteevents.display()))?;
    out.flush()
        .and_then(|()| out.get_ref().sync_all())
        .with_context(|| format!("{}", partial.display()))?;
    drop(out);
    std::fs::rename(&partial, &args.out).with_context(|| format!("{}", args.out.display()))?;
    bar.finish_and_clear();
    print_report(args, &report, size, started.elapsed().as_secs_f64());
    Ok(())
}

fn print_report(args: &ExtractArgs, report: &ExtractReport, bytes: u64, seconds: f64) {
    for skipped in &report.skipped {
        eprintln!(
            "warning: {}:{}: skipped: {}",
            args.noteevents.display(),
            skipped.line,
            skipped.reason
        );
    }
    let unlisted = report.skipped_count - report.skipped.len() as u64;
    if unlisted > 0 {
        eprintln!("warning: {unlisted} more rows skipped");
    }
    println!(
        "{} discharge summaries written to {} ({} records read, {} of other categories, {} \
         MedDec documents left out, {} skipped) in {seconds:.1} s ({:.0} MB/s)",
        report.kept,
        args.out.display(),
        report.records,
        report.other_categories,
        report.excluded,
        report.skipped_count,
        bytes as f64 / 1e6 / seconds.max(1e-9)
    );
}

fn mix(args: &MixArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.quantile) {
        anyhow::bail!("--quantile {}: expected a number in [0, 1]", args.quantile);
    }
    let mut rows = read_training_rows(&args.train)?;
    let real = rows.len();
    let predictions = read_inference_records(&args.predictions)?;
    let selection = pseudo_rows(&predictions, args.quantile).with_context(|| {
        format!(
            "{}: no predictions with an entropy",
            args.predictions.display()
        )
    })?;
    let known: HashSet<&str> = rows.iter().map(|r| r.file_id.as_str()).collect();
    if let Some(twice) = selection
        .rows
        .iter()
        .find(|r| known.contains(r.file_id.as_str()))
    {
        anyhow::bail!(
            "{}: {} is also a training document (pseudo-labels must come from unlabeled notes)",
            args.predictions.display(),
            twice.file_id
        );
    }
    let chosen = selection.rows.len();
    rows.extend(selection.rows);
    write_training_rows(&args.out, &rows, is_csv(&args.out))?;
    println!(
        "{real} training rows + {chosen} of {} pseudo-labelled notes (entropy ≤ {:.4}, the {} \
         quantile; {} cut at the token limit, {} spans not placed) written to {}",
        predictions.len(),
        selection.threshold,
        args.quantile,
        selection.cut,
        selection.dropped_spans,
        args.out.display()
    );
    Ok(())
}

fn explore_thresholds(args: &ExploreArgs) -> Result<()> {
    if let Some(q) = args.quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        anyhow::bail!("--quantiles: {q} is not in [0, 1]");
    }
    let val = read_inference_records(&args.val_predictions)?;
    let unlabeled: Vec<f64> = read_inference_records(&args.unlabeled_predictions)?
        .iter()
        .map(|r| r.entropy)
        .collect();
    let gold = lamar_core::formats::gold::read_gold_dir(&args.gold_dir)?;
    let options = lamar_core::scorer::ScorerOptions {
        token_f1: args.token_f1,
        ..Default::default()
    };
    let documents = score_documents(&val, &gold, options)
        .with_context(|| format!("{}", args.val_predictions.display()))?;
    let exploration = explore(&documents, &unlabeled, &args.quantiles);
    let write = |name: &str, text: &str| -> Result<()> {
        lamar_core::formats::write_atomic(&args.out_dir.join(name), text.as_bytes())?;
        Ok(())
    };
    write(
        "exploration.json",
        &serde_json::to_string_pretty(&exploration)?,
    )?;
    let mut scores = String::new();
    for d in &documents {
        scores.push_str(&serde_json::to_string(d)?);
        scores.push('\n');
    }
    write("scores.jsonl", &scores)?;
    write(
        "exploration.svg",
        &scatter(
            &documents,
            &exploration,
            "Entropy against quality on validation",
        ),
    )?;
    println!("quantile  threshold  val kept   span F1  token F1   base   unlabeled kept");
    let show = |v: Option<f64>| v.map_or("     –".into(), |v| format!("{v:6.4}"));
    for r in &exploration.thresholds {
        println!(
            "{:>8}  {:>9.4}  {:>4} ({:>3.0} %)  {}  {}  {}  {:>6} ({:.1} %)",
            r.quantile,
            r.threshold,
            r.kept,
            100.0 * r.kept_fraction,
            show(r.span_f1),
            show(r.token_f1),
            show(r.base),
            r.unlabeled_kept,
            100.0 * r.unlabeled_fraction
        );
    }
    println!(
        "Spearman ρ of entropy against span F1 {:.3}, token F1 {:.3}, base {:.3}; written to {}",
        exploration.spearman_span_f1,
        exploration.spearman_token_f1,
        exploration.spearman_base,
        args.out_dir.display()
    );
    Ok(())
}
