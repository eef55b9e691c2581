//! `lamar tune`: search the Span-Cluster Consensus thresholds.

use crate::progress::bar;
use anyhow::{Context, Result, bail};
use clap::Args;
use lamar_core::ensemble::input::read_models;
use lamar_core::ensemble::scc::SccParams;
use lamar_core::ensemble::tune::{ConsensusObjective, Tuner, read_trial_log};
use lamar_core::formats::write_atomic;
use lamar_core::nltk::NltkVersion;
use lamar_core::scorer::load::{InputPaths, load_inputs};
use lamar_core::scorer::{ScorerOptions, TokenF1Rule};
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;

/// Search the four Span-Cluster Consensus thresholds on a validation split.
///
/// Each trial merges the models' predictions with Span-Cluster Consensus and scores the result
/// with the official metrics: the shared-task final score when --stats-csv is given, else
/// (span F1 + token F1) / 2, as LAMAR's optimize.py. The sampler is a seeded TPE; the default
/// thresholds are the first trial; trials run in parallel batches of --jobs. Every trial is
/// appended to --log (JSONL) as it finishes, and a later run with the same log resumes the study.
/// The best thresholds are written to --out, which `lamar ensemble --params` reads.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Predictions JSON of each model (on the validation documents).
    #[arg(long, num_args = 1.., required = true)]
    pub predictions: Vec<PathBuf>,
    /// Folder of gold JSON files.
    #[arg(long)]
    pub gold_dir: PathBuf,
    /// Folder of raw text files.
    #[arg(long)]
    pub raw_text_dir: PathBuf,
    /// Split file of the documents to tune on (e.g. splits/val.txt).
    #[arg(long)]
    pub split: Option<PathBuf>,
    /// Demographics: optimise the final score instead of (span + token) / 2.
    #[arg(long)]
    pub stats_csv: Option<PathBuf>,
    /// Total number of trials (a resumed study counts its earlier trials).
    #[arg(long, default_value_t = 5000)]
    pub trials: usize,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Trials evaluated in parallel (default: all cores). Results depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Trial log (JSONL); resumed when it exists.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Where to write the best thresholds.
    #[arg(long)]
    pub out: PathBuf,
    /// NLTK release whose tokenizers to reproduce.
    #[arg(long, default_value = "3.9")]
    pub nltk: NltkVersion,
    /// Token F1 labelling (`lamar` is what LAMAR's optimize.py used).
    #[arg(long, default_value = "official")]
    pub token_f1: TokenF1Rule,
    /// Instead of searching, serve the objective: read one JSON parameter object per line on
    /// stdin, answer its score on stdout (lets other samplers, e.g. Optuna, be compared on the
    /// very same objective).
    #[arg(long, hide = true)]
    pub serve_objective: bool,
}

/// Runs `lamar tune`.
pub fn run(args: &TuneArgs) -> Result<()> {
    let inputs = load_inputs(&InputPaths {
        gold_dir: Some(args.gold_dir.clone()),
        gold_file: None,
        predictions: args.predictions.clone(),
        raw_text_dir: args.raw_text_dir.clone(),
        split: args.split.clone(),
        stats: args.stats_csv.clone(),
    })?;
    let options = ScorerOptions {
        nltk: args.nltk,
        token_f1: args.token_f1,
    };
    let objective = ConsensusObjective::new(&inputs, &read_models(&args.predictions)?, options)?;
    let objective = |params: &SccParams| objective.score(params);

    if args.serve_objective {
        let stdin = std::io::stdin();
        let mut stdout = std::io::stdout().lock();
        for line in std::io::BufRead::lines(stdin.lock()) {
            let params: SccParams =
                serde_json::from_str(&line?).context("a parameter object per line")?;
            writeln!(stdout, "{}", objective(&params))?;
            stdout.flush()?;
        }
        return Ok(());
    }
    let earlier = match args.log.as_ref().filter(|p| p.exists()) {
        Some(log) => {
            let earlier = read_trial_log(log)?;
            println!(
                "resuming from {} trials in {}",
                earlier.len(),
                log.display()
            );
            earlier
        }
        None => Vec::new(),
    };
    let mut tuner = Tuner::resume(args.seed, earlier);
    let mut log = match &args.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        None => None,
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let progress = bar(args.trials, "tuning");
    progress.set_position(tuner.trials().len() as u64);
    let mut best = tuner.best().map_or(f64::MIN, |t| t.score);
    let mut log_error = None;
    let start = std::time::Instant::now();
    tuner.run(
        args.trials,
        jobs,
        |batch| pool.install(|| batch.par_iter().map(&objective).collect()),
        |trial| {
            if let Some(file) = log.as_mut()
                && let Err(e) =
                    writeln!(file, "{}", serde_json::to_string(trial).unwrap_or_default())
            {
                log_error.get_or_insert(e);
            }
            if trial.score > best {
                best = trial.score;
                progress.set_message(format!("best {best:.4}"));
            }
            progress.inc(1);
        },
    );
    progress.finish_and_clear();
    if let Some(e) = log_error {
        bail!("writing the trial log: {e}");
    }
    let best = tuner.best().context("no trial ran")?;
    write_atomic(
        &args.out,
        serde_json::to_string_pretty(&best.params)?.as_bytes(),
    )?;
    let default_score = tuner.trials().first().map_or(f64::NAN, |t| t.score);
    println!(
        "{} trials in {:.1}s ({} jobs); default thresholds {default_score:.4}, best {:.4} at trial {}: {}",
        tuner.trials().len(),
        start.elapsed().as_secs_f64(),
        jobs,
        best.score,
        best.number,
        serde_json::to_string(&best.params)?
    );
    println!("best thresholds written to {}", args.out.display());
    Ok(())
}
