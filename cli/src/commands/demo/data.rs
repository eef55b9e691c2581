//! The demo's data steps: the synthetic corpus and simulated models, the training rows, and the
//! models' tagged outputs decoded to offsets.

use super::DemoArgs;
use anyhow::{Result, bail};
use lamar_core::codec::{DecodeOptions, DecodedFile, canonicalize, decode, dropped_csv};
use lamar_core::formats::predictions::{read_predictions, write_predictions};
use lamar_core::formats::rows::{GoldOffset, read_model_outputs, write_training_rows};
use lamar_core::formats::split::read_split;
use lamar_core::formats::training::training_set;
use lamar_core::formats::write_atomic;
use lamar_core::metrics::ExactSpanScore;
use lamar_core::synth::{
    CorpusLayout, SynthConfig, generate, simulate, write_corpus, write_simulated_model,
};
use std::path::PathBuf;

/// Step 1: the corpus in the MedDec layout and the simulated models' outputs.
pub(super) fn corpus(args: &DemoArgs, layout: &CorpusLayout) -> Result<()> {
    let corpus = generate(&SynthConfig {
        docs: args.docs,
        seed: args.seed,
    });
    write_corpus(&corpus, layout, |_| {})?;
    let rates = args.noise.rates();
    for k in 0..args.models {
        write_simulated_model(&simulate(&corpus, k, &rates, args.seed), layout)?;
    }
    let spans: usize = corpus.documents.iter().map(|d| d.gold.len()).sum();
    println!(
        "  {} documents ({spans} gold spans; splits {}/{}/{}) and {} simulated models in {}",
        corpus.documents.len(),
        corpus.train.len(),
        corpus.val.len(),
        corpus.test.len(),
        args.models,
        args.out.display()
    );
    Ok(())
}

/// Step 2: the train and val splits as tagged training rows; each row's target must decode
/// back to its gold. Returns (rows that do, rows).
pub(super) fn training_rows(args: &DemoArgs, layout: &CorpusLayout) -> Result<(usize, usize)> {
    let tagged_dir = args.out.join("tagged");
    let mut round_trip = (0usize, 0usize);
    for split in ["train", "val"] {
        let mut ids = read_split(&layout.split(split))?;
        ids.sort();
        let set = training_set(
            &layout.gold_dir(),
            &layout.raw_text_dir(),
            &ids,
            false,
            || {},
        )?;
        let out = tagged_dir.join(format!("{split}.jsonl"));
        write_training_rows(&out, &set.rows, false)?;
        let spans: usize = set.rows.iter().map(|r| r.gold_offsets.len()).sum();
        println!(
            "  {split}: {} rows with {spans} gold spans → {}",
            set.rows.len(),
            out.display()
        );
        for row in &set.rows {
            let gold: Vec<_> = row
                .gold_offsets
                .iter()
                .filter_map(GoldOffset::span)
                .collect();
            let mut want = canonicalize(&gold);
            let mut got =
                decode(&row.gold_span, &row.raw_text, &DecodeOptions::default()).plain_spans();
            want.sort();
            got.sort();
            round_trip.0 += usize::from(got == want);
            round_trip.1 += 1;
        }
    }
    println!(
        "  round trip (decode of each training target gives its gold): {}/{} rows",
        round_trip.0, round_trip.1
    );
    if args.strict && round_trip.0 != round_trip.1 {
        bail!(
            "{} training targets do not decode to their gold",
            round_trip.1 - round_trip.0
        );
    }
    Ok(round_trip)
}

/// Step 3: each simulated model's tagged outputs decoded to a predictions file (and its dropped
/// spans); how much of what the model meant survived its typos and trimming. Returns the
/// predictions files and each model's recall of its intended spans.
pub(super) fn offsets(
    args: &DemoArgs,
    layout: &CorpusLayout,
    model_names: &[String],
) -> Result<(Vec<PathBuf>, Vec<f64>)> {
    let decoded_dir = args.out.join("decoded");
    let mut files = Vec::new();
    let mut agreement = Vec::new();
    for name in model_names {
        let rows = read_model_outputs(&layout.outputs(name))?;
        let DecodedFile {
            predictions,
            dropped,
            tally,
        } = super::decode_against_corpus(&rows, layout)?;
        let out = decoded_dir.join(format!("{name}.json"));
        write_predictions(&out, &predictions)?;
        write_atomic(
            &decoded_dir.join(format!("{name}_dropped.csv")),
            &dropped_csv(&dropped),
        )?;
        println!(
            "  {name}: {} documents → {}",
            predictions.len(),
            out.display()
        );
        for line in tally.lines() {
            println!("    {line}");
        }
        let truth = read_predictions(&layout.predictions(name))?;
        if truth.len() != predictions.len() {
            bail!(
                "{name}: {} documents decoded but {} simulated",
                predictions.len(),
                truth.len()
            );
        }
        let mut score = ExactSpanScore::default();
        for (t, d) in truth.iter().zip(&predictions) {
            score.add(&canonicalize(&t.spans(None).0), &d.spans(None).0);
        }
        println!(
            "    recovered {:.1}% of the spans the simulated model meant",
            100.0 * score.recall()
        );
        agreement.push(score.recall());
        files.push(out);
    }
    Ok((files, agreement))
}
