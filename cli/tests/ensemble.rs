//! `lamar ensemble` and `lamar tune` end to end: merging models with explanations, finding
//! thresholds, resuming a study and feeding its best thresholds to the ensemble.

mod common;

use common::{fails, ok, p, synth_with_models};
use std::path::Path;

#[test]
fn ensemble_merges_models_and_explains() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let preds: Vec<String> = synth_with_models(&corpus, 15, 3, &[])
        .iter()
        .map(|m| p(m).to_string())
        .collect();
    let out = dir.path().join("merged.json");
    let explain = dir.path().join("explain.json");
    let mut args = vec![
        "ensemble",
        "--out",
        p(&out),
        "--explain",
        p(&explain),
        "--predictions",
    ];
    args.extend(preds.iter().map(String::as_str));
    ok(&args);
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(merged.as_array().unwrap().len(), 15);
    let names: Vec<&str> = merged
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["file_name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "documents sorted by name");
    let explained: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&explain).unwrap()).unwrap();
    let first = &explained[names[0]]["categories"][0];
    assert!(first["weights"].as_array().unwrap().len() == 3 && first["clusters"].is_array());

    // Thresholds from a params file; an unreadable one is an error naming the file.
    let params = dir.path().join("best.json");
    std::fs::write(&params, r#"{"min_cluster_iou": 0.1, "min_pairwise_iou": 0.1, "min_cluster_support": 0.0, "min_iou_same_cat": 0.8}"#).unwrap();
    let loose = dir.path().join("loose.json");
    let mut args = vec![
        "ensemble",
        "--out",
        p(&loose),
        "--params",
        p(&params),
        "--predictions",
    ];
    args.extend(preds.iter().map(String::as_str));
    ok(&args);
    let count = |path: &Path| -> usize {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["predictions"].as_array().unwrap().len())
            .sum()
    };
    assert!(count(&loose) > count(&out), "support 0 keeps every cluster");
    std::fs::write(&params, "{oops").unwrap();
    let mut args = vec![
        "ensemble",
        "--out",
        p(&loose),
        "--params",
        p(&params),
        "--predictions",
    ];
    args.extend(preds.iter().map(String::as_str));
    let err = fails(&args);
    assert!(err.contains("best.json"), "{err}");
}

#[test]
fn tune_finds_thresholds_resumes_and_feeds_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let preds: Vec<String> = synth_with_models(&corpus, 30, 3, &[])
        .iter()
        .map(|m| p(m).to_string())
        .collect();
    let log = dir.path().join("trials.jsonl");
    let best = dir.path().join("best.json");
    let (data, raw, stats) = (
        corpus.join("data"),
        corpus.join("raw_text"),
        corpus.join("stats.csv"),
    );
    let base = [
        "tune",
        "--gold-dir",
        p(&data),
        "--raw-text-dir",
        p(&raw),
        "--stats-csv",
        p(&stats),
        "--log",
        p(&log),
        "--out",
        p(&best),
        "--jobs",
        "2",
    ];
    let run = |trials: &str| {
        let mut args = base.to_vec();
        args.extend(["--trials", trials, "--predictions"]);
        args.extend(preds.iter().map(String::as_str));
        ok(&args)
    };
    let first = run("20");
    assert!(first.contains("20 trials"), "{first}");
    let second = run("40");
    assert!(second.contains("resuming from 20 trials"), "{second}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 40);
    assert_eq!(
        lines[0]["params"]["min_cluster_support"], 0.34,
        "the default point is tried first"
    );
    // The written thresholds are those of the best trial (the earliest of equal scores), and
    // the summary names it.
    let scores: Vec<f64> = lines.iter().map(|t| t["score"].as_f64().unwrap()).collect();
    let best_score = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let at = scores.iter().position(|&s| s == best_score).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&best).unwrap()).unwrap();
    assert_eq!(
        written, lines[at]["params"],
        "best.json holds the best trial"
    );
    assert!(
        second.contains(&format!(
            "best {best_score:.4} at trial {}",
            lines[at]["number"]
        )),
        "{second}"
    );
    assert!(
        lines.iter().any(|t| t["params"] != lines[0]["params"]),
        "the sampler moved away from the default point"
    );
    let merged = dir.path().join("merged.json");
    let mut args = vec![
        "ensemble",
        "--params",
        p(&best),
        "--out",
        p(&merged),
        "--predictions",
    ];
    args.extend(preds.iter().map(String::as_str));
    ok(&args);
}
