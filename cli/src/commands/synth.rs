//! `lamar synth`: write a synthetic MedDec-format corpus.

use crate::progress::bar;
use anyhow::{Context, Result};
use clap::Args;
use lamar_core::synth::{
    CorpusLayout, NoiseRates, SynthConfig, generate, simulate, write_corpus, write_noteevents,
    write_simulated_model,
};
use std::path::PathBuf;

/// Noise of simulated models (probabilities; see `lamar synth --help`).
#[derive(Args, Debug, Clone)]
pub struct NoiseArgs {
    /// Probability that a model misses a gold span.
    #[arg(long, default_value_t = NoiseRates::default().miss, value_parser = probability)]
    pub miss_rate: f64,
    /// Probability that a span boundary moves by one word.
    #[arg(long, default_value_t = NoiseRates::default().shift, value_parser = probability)]
    pub shift_rate: f64,
    /// Probability that a span gets a wrong category.
    #[arg(long, default_value_t = NoiseRates::default().wrong_category, value_parser = probability)]
    pub wrong_category_rate: f64,
    /// Probability that a span is predicted twice.
    #[arg(long, default_value_t = NoiseRates::default().duplicate, value_parser = probability)]
    pub duplicate_rate: f64,
    /// Expected spurious spans per gold span.
    #[arg(long, default_value_t = NoiseRates::default().spurious, value_parser = non_negative)]
    pub spurious_rate: f64,
    /// Probability per document that the tagged output has a typo or changed case.
    #[arg(long, default_value_t = NoiseRates::default().typo, value_parser = probability)]
    pub typo_rate: f64,
    /// Probability per document that the tagged output lost surrounding whitespace.
    #[arg(long, default_value_t = NoiseRates::default().trim, value_parser = probability)]
    pub trim_rate: f64,
}

impl NoiseArgs {
    /// The rates these flags describe.
    pub fn rates(&self) -> NoiseRates {
        NoiseRates {
            miss: self.miss_rate,
            shift: self.shift_rate,
            wrong_category: self.wrong_category_rate,
            duplicate: self.duplicate_rate,
            spurious: self.spurious_rate,
            typo: self.typo_rate,
            trim: self.trim_rate,
        }
    }
}

fn probability(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a probability in [0, 1]"))
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v >= 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{v} must be a finite number ≥ 0"))
    }
}

/// Generate a synthetic corpus in the MedDec layout.
///
/// Writes DIR/data/ID.json (gold), DIR/raw_text/ID.txt, DIR/stats.csv,
/// DIR/splits/{train,val,test}.txt and, with --simulate-models N,
/// DIR/predictions/model_K.json (offsets), DIR/outputs/model_K.jsonl (tagged text) and
/// DIR/predictions/model_K.meta.json (the noise used). Simulated models are noisy copies of the
/// gold, not real models. The output is a pure function of --docs and --seed.
#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Folder to write the corpus into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of documents (MedDec has 451).
    #[arg(long, default_value_t = 451)]
    pub docs: usize,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Also write the outputs of N simulated models.
    #[arg(long, default_value_t = 0)]
    pub simulate_models: usize,
    /// Also write DIR/NOTEEVENTS.csv in MIMIC-III's layout: the corpus's documents (which
    /// `lamar pseudo extract --exclude` leaves out) and N other synthetic discharge summaries
    /// as unlabeled notes, with a few addenda and a nursing note (for `lamar pseudo`).
    #[arg(long)]
    pub unlabeled_notes: Option<usize>,
    #[command(flatten)]
    pub noise: NoiseArgs,
}

/// Runs `lamar synth`.
pub fn run(args: &SynthArgs) -> Result<()> {
    let corpus = generate(&SynthConfig {
        docs: args.docs,
        seed: args.seed,
    });
    let layout = CorpusLayout::new(&args.out);
    let progress = bar(corpus.documents.len(), "writing");
    write_corpus(&corpus, &layout, |n| progress.set_position(n as u64))
        .with_context(|| format!("writing the corpus to {}", args.out.display()))?;
    progress.finish_and_clear();
    let rates = args.noise.rates();
    for k in 0..args.simulate_models {
        let model = simulate(&corpus, k, &rates, args.seed);
        write_simulated_model(&model, &layout)
            .with_context(|| format!("writing simulated {}", model.name))?;
    }
    if let Some(n) = args.unlabeled_notes {
        // Another seed: other notes, in the same style.
        let unlabeled = generate(&SynthConfig {
            docs: n,
            seed: args.seed ^ 0x756e_6c61_6265_6c64,
        });
        let path = layout.noteevents();
        let reports = write_noteevents(&corpus, &unlabeled, &path)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {reports} unlabeled notes to {}", path.display());
    }
    let spans: usize = corpus.documents.iter().map(|d| d.gold.len()).sum();
    println!(
        "wrote {} documents ({} gold spans; splits {}/{}/{}) and {} simulated models to {}",
        corpus.documents.len(),
        spans,
        corpus.train.len(),
        corpus.val.len(),
        corpus.test.len(),
        args.simulate_models,
        args.out.display()
    );
    Ok(())
}
