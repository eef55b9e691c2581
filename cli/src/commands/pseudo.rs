//! `lamar pseudo`: pseudo-labels from unlabeled notes (LAMAR's Model 3).

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use lamar_core::formats::inference::read_inference_records;
use lamar_core::formats::rows::{is_csv, read_training_rows, write_training_rows};
use lamar_core::formats::split::read_split;
use lamar_core::pseudo::embeddings::{EmbeddingFile, hashed_embedding, read_notes};
use lamar_core::pseudo::explore::{explore, scatter, score_documents};
use lamar_core::pseudo::extract::{ExtractReport, extract_notes};
use lamar_core::pseudo::retrieve::{Embeddings, greedy_unique, match_rows, query_candidates};
use lamar_core::pseudo::select::pseudo_rows;
use std::collections::HashSet;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

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

/// Which embedder.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedderChoice {
    /// lamar's dependency-free embedder: a signed hashed bag of words (sublinear counts),
    /// L2-normalised; no model weights needed.
    Hashed,
}

/// Embed notes (LAMAR §8.2) into an embeddings file for `lamar pseudo retrieve`.
///
/// --input is JSON Lines with `file_id` and `text` (`lamar pseudo extract`) or `raw_text`
/// (`lamar tag`'s rows). --out is safetensors: `embeddings`, f32 [notes, dim], L2-normalised,
/// with the ids and the embedder's name in the header (Python: safetensors.numpy.load_file).
/// The reference embeds with Qwen3-Embedding-4B (last-token pooling, no instruction); lamar's
/// Qwen3-Embedding path is still to come (issue 20), so today the embedder is --embedder
/// hashed, which needs no weights.
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
    /// Where to write the chosen notes as `lamar infer` input.
    #[arg(long, requires = "corpus_notes")]
    pub inference_input: Option<PathBuf>,
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
        PseudoCommand::Embed(args) => embed(args),
        PseudoCommand::Retrieve(args) => retrieve(args),
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

fn embed(args: &EmbedArgs) -> Result<()> {
    if args.dim == 0 {
        anyhow::bail!("--dim must be at least 1");
    }
    let mut notes = read_notes(&args.input)?;
    if let Some(wanted) = &args.description {
        notes.retain(|n| n.description.as_ref().is_none_or(|d| d == wanted));
    }
    let bar = crate::progress::bar(notes.len(), "embed");
    let mut data = Vec::with_capacity(notes.len() * args.dim);
    for note in &notes {
        data.extend(hashed_embedding(&note.text, args.dim));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let file = EmbeddingFile {
        ids: notes.into_iter().map(|n| n.file_id).collect(),
        dim: args.dim,
        data,
        embedder: format!("lamar-hashed-{}", args.dim),
    };
    file.write(&args.out)?;
    println!(
        "{} notes embedded ({}) into {}",
        file.ids.len(),
        file.embedder,
        args.out.display()
    );
    Ok(())
}

fn retrieve(args: &RetrieveArgs) -> Result<()> {
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
    let bar = crate::progress::bar(queries.len(), "retrieve");
    let candidates: Vec<_> = (0..q.rows())
        .map(|k| {
            let found = query_candidates(q.row(k), c, args.candidates);
            bar.inc(1);
            found
        })
        .collect();
    bar.finish_and_clear();
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
