//! Golden test: `lamar evaluate` against outputs of the published MedDec evaluator
//! (CLU-UML/MedDec `evaluate.py` at f4374cd), run on the synthetic corpus in
//! `tests/golden/official/` with NLTK 3.8.1, 3.9.2, 3.9.4 and 3.10.4 by that folder's
//! `make_goldens.py` (see its README).
//!
//! Everything is compared exactly except averages over files: the script sums per-file token F1
//! in Python set order (which follows the hash seed), lamar in sorted order, so those may differ
//! in the last bits; they must agree within 1e-12.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/official")
}

fn close(a: &Value, b: &Value, what: &str) {
    let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!((x - y).abs() <= 1e-12, "{what}: lamar {x} vs official {y}");
}

fn compare(ours: &Value, theirs: &Value, case: &str) {
    for k in ["precision", "recall", "f1"] {
        assert_eq!(ours["span_f1"][k], theirs["span_f1"][k], "{case}: span {k}");
    }
    close(
        &ours["token_f1"],
        &theirs["token_f1"],
        &format!("{case}: token_f1"),
    );
    assert_eq!(ours["statistics"], theirs["statistics"], "{case}");
    let (s, t) = (&ours["shared_task"], &theirs["shared_task"]);
    for k in ["base_score", "worst_group_score", "final_score"] {
        close(&s[k], &t[k], &format!("{case}: {k}"));
    }
    for dim in ["sex", "race", "language"] {
        let (a, b) = (
            s["subgroups"][dim].as_object().unwrap(),
            t["subgroups"][dim].as_object().unwrap(),
        );
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{case}: {dim} groups"
        );
        for (name, g) in a {
            let h = &b[name];
            assert_eq!(g["n_files"], h["n_files"], "{case}: {dim} {name}");
            assert_eq!(g["n_spans"], h["n_spans"], "{case}: {dim} {name}");
            assert_eq!(g["span_f1"], h["span_f1"], "{case}: {dim} {name} span_f1");
            close(
                &g["token_f1"],
                &h["token_f1"],
                &format!("{case}: {dim} {name} token_f1"),
            );
            close(
                &g["base_score"],
                &h["base_score"],
                &format!("{case}: {dim} {name} base"),
            );
        }
    }
}

fn run(name: &str, nltk: &str, model: &str, split: Option<&str>) {
    run_in(&golden(), name, nltk, model, split);
}

/// `lamar evaluate` on the inputs in `dir`, compared with the golden `name` (in the golden
/// folder).
fn run_in(dir: &Path, name: &str, nltk: &str, model: &str, split: Option<&str>) {
    let goldens = golden();
    let predictions = format!("predictions/{model}.json");
    let mut args = vec![
        "--stats-csv",
        "stats.csv",
        "--predictions",
        &predictions,
        "--nltk",
        nltk,
    ];
    if let Some(split) = split {
        args.extend(["--split", split]);
    }
    let (ours, printed) = evaluate_in(dir, &args);
    let theirs: Value = serde_json::from_str(
        &std::fs::read_to_string(goldens.join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    compare(&ours, &theirs, name);
    // The printed summary is the script's, line for line (up to where the output path is named).
    let official = std::fs::read_to_string(goldens.join(format!("{name}.txt"))).unwrap();
    let cut = |s: &str| {
        s.split("\nResults saved to:")
            .next()
            .unwrap()
            .replace(split.unwrap_or("\u{0}"), "SPLIT")
    };
    assert_eq!(cut(&printed), cut(&official), "{name}: printed summary");
}

/// Runs `lamar evaluate --gold-dir data --raw-text-dir raw_text ARGS --output …` in `dir`, which
/// must succeed: the JSON it wrote and what it printed.
fn evaluate_in(dir: &Path, args: &[&str]) -> (Value, String) {
    let out = tempfile::tempdir().unwrap();
    let output = out.path().join("results.json");
    let result = Command::new(env!("CARGO_BIN_EXE_lamar"))
        .current_dir(dir)
        .args([
            "evaluate",
            "--gold-dir",
            "data",
            "--raw-text-dir",
            "raw_text",
        ])
        .args(args)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let json = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    (json, String::from_utf8(result.stdout).unwrap())
}

#[test]
fn matches_the_official_evaluator_nltk_3_9_4() {
    for m in ["model_0", "model_1", "model_2"] {
        run(&format!("official_3.9.4_{m}"), "3.9", m, None);
    }
    run(
        "official_3.9.4_model_0_val",
        "3.9",
        "model_0",
        Some("splits/val.txt"),
    );
}

#[test]
fn matches_the_official_evaluator_nltk_3_8_1() {
    run("official_3.8.1_model_0", "3.8", "model_0", None);
}

#[test]
fn matches_the_official_evaluator_nltk_3_9_2() {
    run("official_3.9.2_model_0", "3.9.2", "model_0", None);
}

#[test]
fn matches_the_official_evaluator_nltk_3_10_4() {
    run("official_3.10.4_model_0", "3.10", "model_0", None);
}

/// Notes where the NLTK releases tokenize differently (`tests/golden/official/versions`): each
/// `--nltk` mode matches the evaluator under its release, and the releases disagree there.
#[test]
fn each_nltk_mode_matches_its_release_where_they_differ() {
    let dir = golden().join("versions");
    for (release, mode) in [
        ("3.8.1", "3.8"),
        ("3.9.2", "3.9.2"),
        ("3.9.4", "3.9"),
        ("3.10.4", "3.10"),
    ] {
        run_in(
            &dir,
            &format!("official_{release}_versions"),
            mode,
            "model_0",
            None,
        );
    }
    let token_f1 = |release: &str| -> f64 {
        let path = golden().join(format!("official_{release}_versions.json"));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["token_f1"].as_f64().unwrap()
    };
    let (old, current, new) = (token_f1("3.8.1"), token_f1("3.9.4"), token_f1("3.10.4"));
    assert!(
        old != current && current != new && old != new,
        "{old} {current} {new}"
    );
}

/// `--token-f1 lamar` against LAMAR's own evaluator (medexact-lamar 2c0d9c5
/// `evaluate/evaluate.py`, run by `make_lamar_token_f1.py`), which differs from the official
/// rule wherever spans overlap.
#[test]
fn lamar_token_f1_matches_lamars_evaluator() {
    let text = std::fs::read_to_string(golden().join("lamar_token_f1_3.9.4.json")).unwrap();
    let want: Value = serde_json::from_str(&text).unwrap();
    let mut differs = 0;
    for (case, (folder, model)) in [
        ("model_0", (".", "model_0")),
        ("model_1", (".", "model_1")),
        ("model_2", (".", "model_2")),
        ("versions", ("versions", "model_0")),
    ] {
        let predictions = format!("predictions/{model}.json");
        let (ours, _) = evaluate_in(
            &golden().join(folder),
            &[
                "--predictions",
                &predictions,
                "--nltk",
                "3.9",
                "--token-f1",
                "lamar",
            ],
        );
        close(
            &ours["token_f1"],
            &want["token_f1"][case],
            &format!("{case}: lamar token_f1"),
        );
        let official = golden().join(format!("official_3.9.4_{case}.json"));
        let official: Value =
            serde_json::from_str(&std::fs::read_to_string(official).unwrap()).unwrap();
        differs += usize::from(official["token_f1"] != want["token_f1"][case]);
    }
    assert!(differs >= 3, "the goldens tell the two rules apart");
}

#[test]
fn several_models_in_one_run_match_separate_official_runs() {
    let dir = golden();
    let (ours, printed) = evaluate_in(
        &dir,
        &[
            "--stats-csv",
            "stats.csv",
            "--predictions",
            "predictions/model_0.json",
            "predictions/model_1.json",
            "predictions/model_2.json",
        ],
    );
    for m in ["model_0", "model_1", "model_2"] {
        let name = format!("official_3.9.4_{m}");
        let theirs: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        compare(&ours[format!("predictions/{m}.json")], &theirs, &name);
    }
    assert_eq!(
        printed
            .matches("MedDec Shared Task Evaluation Results")
            .count(),
        3
    );
}
