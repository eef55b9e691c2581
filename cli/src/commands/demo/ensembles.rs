//! The demo's ensemble steps: the consensus thresholds tuned on val and the models merged by
//! several voters, then every system scored on test.

use super::DemoArgs;
use anyhow::{Context, Result};
use lamar_core::ensemble::input::read_models;
use lamar_core::ensemble::registry::{VoterSettings, voter_by_name};
use lamar_core::ensemble::scc::SccParams;
use lamar_core::ensemble::tune::{ConsensusObjective, Tuner};
use lamar_core::ensemble::{explanations_json, merge_all, prediction_files};
use lamar_core::formats::predictions::write_predictions;
use lamar_core::formats::write_atomic;
use lamar_core::scorer::ScorerOptions;
use lamar_core::scorer::evaluate::evaluate_files;
use lamar_core::scorer::load::{InputPaths, load_inputs};
use lamar_core::synth::CorpusLayout;
use rayon::prelude::*;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Step 4: Span-Cluster Consensus thresholds tuned on val (TPE, trials evaluated in parallel
/// batches of the machine's cores, as `lamar tune` does by default), then the models merged by
/// the consensus (default and tuned thresholds), majority and weighted boundary fusion. Each
/// merged file joins `systems`.
pub(super) fn tune_and_merge(
    args: &DemoArgs,
    layout: &CorpusLayout,
    model_files: &[PathBuf],
    systems: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    let dir = args.out.join("ensemble");
    let votes = read_models(model_files)?;
    let inputs = load_inputs(&InputPaths {
        gold_dir: Some(layout.gold_dir()),
        predictions: model_files.to_vec(),
        raw_text_dir: layout.raw_text_dir(),
        split: Some(layout.split("val")),
        stats: Some(layout.stats()),
        ..InputPaths::default()
    })?;
    let objective = ConsensusObjective::new(&inputs, &votes, ScorerOptions::default())?;
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut tuner = Tuner::new(args.seed);
    tuner.run(
        args.tune_trials,
        jobs,
        |batch| batch.par_iter().map(|p| objective.score(p)).collect(),
        |_| {},
    );
    let best = tuner.best().context("no trial ran")?;
    let default_score = tuner.trials().first().map_or(f64::NAN, |t| t.score);
    let tuned_file = dir.join("best_params.json");
    write_atomic(
        &tuned_file,
        serde_json::to_string_pretty(&best.params)?.as_bytes(),
    )?;
    println!(
        "  {} trials: default thresholds {default_score:.4}, best {:.4} at trial {} → {}",
        tuner.trials().len(),
        best.score,
        best.number,
        tuned_file.display()
    );
    let runs = [
        ("scc", "scc", SccParams::default()),
        ("scc-tuned", "scc", best.params),
        ("majority", "majority", SccParams::default()),
        ("wbf", "wbf", SccParams::default()),
    ];
    for (system, voter, params) in runs {
        let explain = system == "scc";
        let voter = voter_by_name(
            voter,
            &VoterSettings {
                params,
                explain,
                ..VoterSettings::default()
            },
        )?;
        let merged = merge_all(&votes, voter.as_ref());
        let out = dir.join(format!("{system}.json"));
        let files = prediction_files(&merged);
        write_predictions(&out, &files)?;
        if explain {
            write_atomic(
                &dir.join("scc_explain.json"),
                explanations_json(&merged)?.as_bytes(),
            )?;
        }
        let spans: usize = files.iter().map(|f| f.predictions.len()).sum();
        println!(
            "  {system}: {spans} spans over {} documents → {}",
            files.len(),
            out.display()
        );
        systems.push((format!("ensemble:{system}"), out));
    }
    Ok(())
}

/// Step 6: every system's official scores on the test split.
pub(super) fn scores(layout: &CorpusLayout, systems: &[(String, PathBuf)]) -> Result<Vec<Value>> {
    let evaluated = evaluate_files(
        &InputPaths {
            gold_dir: Some(layout.gold_dir()),
            predictions: systems.iter().map(|(_, p)| p.clone()).collect(),
            raw_text_dir: layout.raw_text_dir(),
            split: Some(layout.split("test")),
            stats: Some(layout.stats()),
            ..InputPaths::default()
        },
        ScorerOptions::default(),
    )?;
    let mut scores = Vec::with_capacity(systems.len());
    for ((name, _), (_, evaluation)) in systems.iter().zip(&evaluated.results) {
        let st = evaluation
            .shared_task
            .as_ref()
            .context("stats.csv was given")?;
        println!(
            "  {name:<22} span F1 {:.4}  token F1 {:.4}  base {:.4}  worst group {:.4}  final {:.4}",
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
    Ok(scores)
}
