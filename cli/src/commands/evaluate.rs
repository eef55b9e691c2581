//! `lamar evaluate`: the official MedDec scorer.

use anyhow::{Context, Result};
use clap::Args;
use lamar_core::formats::write_atomic;
use lamar_core::nltk::NltkVersion;
use lamar_core::scorer::evaluate::evaluate_files;
use lamar_core::scorer::load::InputPaths;
use lamar_core::scorer::report::summary;
use lamar_core::scorer::{ScorerOptions, TokenF1Rule};
use std::path::PathBuf;

/// Score predictions with the MedDec shared-task metrics (exact to the official evaluate.py).
///
/// Span F1 matches (document, category, lower-cased refined span text); token F1 labels NLTK
/// word_tokenize tokens and macro-averages per document; with --stats-csv the shared-task final
/// score (base and worst demographic group) is added. Prints the official summary; --output
/// writes the official JSON keys plus `token_f1_by_file`. Several prediction files (models) can
/// be scored in one run: the gold is tokenized once, a summary is printed per file, and --output
/// then holds an object keyed by predictions file.
///
/// NLTK changed its tokenizers between releases, which moves token F1 (up to 0.07 on one input):
/// --nltk picks the rules (3.9 = 3.9.4 by default; 3.9.2, 3.8 = 3.8.1, 3.10 = 3.10.4).
/// Differences from the script: files are averaged in sorted order (the script's order follows
/// Python's hash seed), and inputs the script would crash on are reported as errors.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Folder of gold JSON files.
    #[arg(long, required_unless_present = "gold_file")]
    pub gold_dir: Option<PathBuf>,
    /// A single gold file (single-object or list form) instead of --gold-dir.
    #[arg(long, conflicts_with = "gold_dir")]
    pub gold_file: Option<PathBuf>,
    /// Folder of raw text files (`<id>.txt`).
    #[arg(long)]
    pub raw_text_dir: PathBuf,
    /// Predictions JSON (the submission format); several files score several models.
    #[arg(long, num_args = 1.., required = true)]
    pub predictions: Vec<PathBuf>,
    /// Split file: only these document ids are scored.
    #[arg(long)]
    pub split: Option<PathBuf>,
    /// Demographics, for the shared-task final score.
    #[arg(long)]
    pub stats_csv: Option<PathBuf>,
    /// Write the results as JSON.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// NLTK release whose tokenizers to reproduce: 3.8, 3.9.2, 3.9, 3.10.
    #[arg(long, default_value = "3.9")]
    pub nltk: NltkVersion,
    /// Token F1 labelling: `official` (first span wins) or `lamar` (overlaps are ambiguous).
    #[arg(long, default_value = "official")]
    pub token_f1: TokenF1Rule,
    /// Refuse predictions with spans outside their text (negative offsets, or past the text's
    /// end) instead of warning about each (the scorer drops them either way).
    #[arg(long)]
    pub strict: bool,
}

impl EvaluateArgs {
    /// The files to read.
    pub fn input_paths(&self) -> InputPaths {
        InputPaths {
            gold_dir: self.gold_dir.clone(),
            gold_file: self.gold_file.clone(),
            predictions: self.predictions.clone(),
            raw_text_dir: self.raw_text_dir.clone(),
            split: self.split.clone(),
            stats: self.stats_csv.clone(),
        }
    }

    /// The scoring options.
    pub fn scorer_options(&self) -> ScorerOptions {
        ScorerOptions {
            nltk: self.nltk,
            token_f1: self.token_f1,
        }
    }
}

/// Runs `lamar evaluate`.
pub fn run(args: &EvaluateArgs) -> Result<()> {
    let evaluated = evaluate_files(&args.input_paths(), args.scorer_options())?;
    super::outside::report(&evaluated.outside_text, args.strict)?;
    if let Some(split) = args.split.as_ref().filter(|_| evaluated.split_applied) {
        for predicted in &evaluated.predicted_documents {
            println!(
                "Filtered to {} gold files and {predicted} prediction files based on {}",
                evaluated.gold_documents,
                split.display()
            );
        }
    }
    let results = evaluated.results;
    let several = results.len() > 1;
    for (path, evaluation) in &results {
        if several {
            println!("\n{}", path.display());
        }
        print!("{}", summary(evaluation));
    }
    if let Some(out) = &args.output {
        let json = if several {
            let by_file: serde_json::Map<String, serde_json::Value> = results
                .iter()
                .map(|(p, e)| Ok((p.display().to_string(), serde_json::to_value(e)?)))
                .collect::<Result<_>>()?;
            serde_json::to_string_pretty(&by_file)?
        } else {
            serde_json::to_string_pretty(&results[0].1)?
        };
        write_atomic(out, json.as_bytes()).with_context(|| format!("writing {}", out.display()))?;
        println!("\nResults saved to: {}", out.display());
    }
    Ok(())
}
