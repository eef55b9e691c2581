//! `lamar demo`: every capability that exists, end to end, on a synthetic corpus.

use super::ensemble::{BoundaryKind, EnsembleArgs, VoterKind};
use super::evaluate::EvaluateArgs;
use super::offsets::OffsetsArgs;
use super::synth::{NoiseArgs, SynthArgs};
use super::tag::TagArgs;
use super::tune::TuneArgs;
use anyhow::{Context, Result};
use clap::Args;
use lamar_core::codec::{DecodeOptions, canonicalize, decode};
use lamar_core::formats::predictions::read_predictions;
use lamar_core::formats::rows::{GoldOffset, read_training_rows};
use lamar_core::formats::write_atomic;
use lamar_core::metrics::ExactSpanScore;
use lamar_core::nltk::NltkVersion;
use lamar_core::scorer::TokenF1Rule;
use lamar_core::synth::CorpusLayout;
use serde_json::json;
use std::path::PathBuf;

/// Run every step that exists, end to end, on a synthetic corpus.
///
/// corpus (`lamar synth`) → simulated model outputs → training rows (`lamar tag`) → offsets
/// (`lamar offsets`) → tuned ensembles (`lamar tune`, `lamar ensemble`) → official scores
/// (`lamar evaluate`). Everything is written under --out,
/// with a summary in OUT/summary.json. Steps that are not built yet (viewer, plugins, models) are
/// listed as such.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for everything the demo writes.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Number of synthetic documents.
    #[arg(long, default_value_t = 451)]
    pub docs: usize,
    /// Number of simulated models.
    #[arg(long, default_value_t = 3)]
    pub models: usize,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Tuning trials for the consensus thresholds.
    #[arg(long, default_value_t = 300)]
    pub tune_trials: usize,
    #[command(flatten)]
    pub noise: NoiseArgs,
}

fn step(n: usize, total: usize, what: &str) {
    println!("\n[{n}/{total}] {what}");
}

/// Runs `lamar demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    const STEPS: usize = 6;
    let layout = CorpusLayout::new(&args.out);
    let model_names: Vec<String> = (0..args.models).map(|k| format!("model_{k}")).collect();

    step(1, STEPS, "corpus and simulated models (lamar synth)");
    super::synth::run(&SynthArgs {
        out: args.out.clone(),
        docs: args.docs,
        seed: args.seed,
        simulate_models: args.models,
        noise: args.noise.clone(),
    })?;

    step(2, STEPS, "gold → tagged training rows (lamar tag)");
    let tagged_dir = args.out.join("tagged");
    let mut round_trip = (0usize, 0usize);
    for split in ["train", "val"] {
        let out = tagged_dir.join(format!("{split}.jsonl"));
        super::tag::run(&TagArgs {
            gold_dir: layout.gold_dir(),
            raw_text_dir: layout.raw_text_dir(),
            split: layout.split(split),
            out: out.clone(),
            format: None,
            skip_missing: false,
        })?;
        for row in read_training_rows(&out)? {
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

    step(3, STEPS, "tagged model outputs → offsets (lamar offsets)");
    let decoded_dir = args.out.join("decoded");
    let mut agreement = Vec::new();
    for name in &model_names {
        let out = decoded_dir.join(format!("{name}.json"));
        println!("  {name}:");
        super::offsets::run(&OffsetsArgs {
            input: layout.outputs(name),
            raw_text_dir: layout.raw_text_dir(),
            out: out.clone(),
            dropped: Some(decoded_dir.join(format!("{name}_dropped.csv"))),
            keep_decision: false,
            no_verbatim: false,
            reference: false,
        })?;
        // How much of what the simulated model "meant" survived its own typos and trimming.
        let truth = read_predictions(&layout.predictions(name))?;
        let decoded = read_predictions(&out)?;
        let mut score = ExactSpanScore::default();
        for (t, d) in truth.iter().zip(&decoded) {
            score.add(&canonicalize(&t.spans(None).0), &d.spans(None).0);
        }
        println!(
            "    recovered {:.1}% of the spans the simulated model meant",
            100.0 * score.recall()
        );
        agreement.push(score.recall());
    }

    step(
        4,
        STEPS,
        "tune the consensus on val (lamar tune), merge the models (lamar ensemble)",
    );
    let model_files: Vec<PathBuf> = model_names
        .iter()
        .map(|n| decoded_dir.join(format!("{n}.json")))
        .collect();
    let mut systems: Vec<(String, PathBuf)> = model_names
        .iter()
        .cloned()
        .zip(model_files.iter().cloned())
        .collect();
    let tuned = args.out.join("ensemble").join("best_params.json");
    print!("  ");
    super::tune::run(&TuneArgs {
        predictions: model_files.clone(),
        gold_dir: layout.gold_dir(),
        raw_text_dir: layout.raw_text_dir(),
        split: Some(layout.split("val")),
        stats_csv: Some(layout.stats()),
        trials: args.tune_trials,
        seed: args.seed,
        jobs: None,
        log: None,
        out: tuned.clone(),
        nltk: NltkVersion::default(),
        token_f1: TokenF1Rule::default(),
        serve_objective: false,
    })?;
    let runs = [
        ("scc", VoterKind::Scc, None),
        ("scc-tuned", VoterKind::Scc, Some(tuned.clone())),
        ("majority", VoterKind::Majority, None),
        ("wbf", VoterKind::Wbf, None),
    ];
    for (voter, kind, params) in runs {
        let out = args.out.join("ensemble").join(format!("{voter}.json"));
        print!("  ");
        super::ensemble::run(&EnsembleArgs {
            predictions: model_files.clone(),
            voter: kind,
            params,
            min_cluster_iou: None,
            min_pairwise_iou: None,
            min_cluster_support: None,
            min_iou_same_cat: None,
            boundary: BoundaryKind::Joint,
            out: out.clone(),
            explain: (voter == "scc").then(|| args.out.join("ensemble").join("scc_explain.json")),
        })?;
        systems.push((format!("ensemble:{voter}"), out));
    }

    step(
        5,
        STEPS,
        "official MedDec scores on the test split (lamar evaluate)",
    );
    let mut scores = Vec::new();
    let evaluations = super::evaluate::evaluate(
        &EvaluateArgs {
            gold_dir: Some(layout.gold_dir()),
            gold_file: None,
            raw_text_dir: layout.raw_text_dir(),
            predictions: systems.iter().map(|(_, p)| p.clone()).collect(),
            split: Some(layout.split("test")),
            stats_csv: Some(layout.stats()),
            output: None,
            nltk: NltkVersion::default(),
            token_f1: TokenF1Rule::default(),
        },
        true,
    )?;
    for ((name, _), (_, evaluation)) in systems.iter().zip(&evaluations) {
        let st = evaluation
            .shared_task
            .as_ref()
            .context("stats.csv was given")?;
        println!(
            "  {name:<18} span F1 {:.4}  token F1 {:.4}  base {:.4}  worst group {:.4}  final {:.4}",
            evaluation.span_f1.f1,
            evaluation.token_f1,
            st.base_score,
            st.worst_group_score,
            st.final_score
        );
        scores.push(json!({
            "model": name,
            "span_f1": evaluation.span_f1.f1,
            "token_f1": evaluation.token_f1,
            "final_score": st.final_score,
        }));
    }

    step(6, STEPS, "not built yet");
    for pending in [
        "browser viewer",
        "plugins",
        "Qwen3.5 models (real model outputs)",
    ] {
        println!("  - {pending}");
    }

    let summary = json!({
        "docs": args.docs,
        "seed": args.seed,
        "models": model_names,
        "round_trip_rows": {"exact": round_trip.0, "total": round_trip.1},
        "decoded_recall_of_simulated_spans": agreement,
        "test_scores": scores,
    });
    let path = args.out.join("summary.json");
    write_atomic(&path, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!("\nsummary written to {}", path.display());
    Ok(())
}
