//! `lamar pseudo`: pseudo-labels from unlabeled notes (LAMAR's Model 3).

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use lamar_core::formats::split::read_split;
use lamar_core::pseudo::extract::{ExtractReport, extract_notes};
use std::collections::HashSet;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Pseudo-labels from unlabeled discharge summaries.
#[derive(Subcommand, Debug)]
pub enum PseudoCommand {
    Extract(ExtractArgs),
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
