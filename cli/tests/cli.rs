//! End-to-end tests of the `lamar` binary.

#[path = "../../plugins/tests/common/mod.rs"]
mod plugin_build;

mod common;

use common::{fails, lamar, ok, p, synth_with_models, tag};
use std::path::Path;

#[test]
fn synth_writes_the_meddec_layout_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        ok(&[
            "synth",
            "--out",
            p(out),
            "--docs",
            "12",
            "--seed",
            "5",
            "--simulate-models",
            "2",
        ]);
    }
    for rel in [
        "stats.csv",
        "splits/train.txt",
        "splits/val.txt",
        "splits/test.txt",
        "predictions/model_1.json",
        "outputs/model_0.jsonl",
        "predictions/model_0.meta.json",
    ] {
        let (x, y) = (
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(b.join(rel)).unwrap(),
        );
        assert_eq!(x, y, "{rel} differs between two runs with one seed");
    }
    assert_eq!(std::fs::read_dir(a.join("data")).unwrap().count(), 12);
    assert_eq!(std::fs::read_dir(a.join("raw_text")).unwrap().count(), 12);
    let meta = std::fs::read_to_string(a.join("predictions/model_0.meta.json")).unwrap();
    assert!(meta.contains("\"simulated\": true"));
}

#[test]
fn tag_then_offsets_round_trips_the_gold() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    ok(&["synth", "--out", p(&corpus), "--docs", "10"]);
    let rows = dir.path().join("train.jsonl");
    let out = tag(&corpus, "train", &rows, &[]);
    assert!(out.contains("rows with"), "{out}");
    // The gold targets, renamed to `predicted`, are perfect model outputs.
    let text = std::fs::read_to_string(&rows).unwrap();
    let mut outputs = String::new();
    let mut expected = Vec::new();
    for line in text.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        outputs.push_str(
            &serde_json::json!({"file_id": row["file_id"], "predicted": row["gold_span"]})
                .to_string(),
        );
        outputs.push('\n');
        let mut spans: Vec<(u64, u64, u64)> = row["gold_offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["start_offset"].as_u64().unwrap(),
                    o["end_offset"].as_u64().unwrap(),
                    o["category"].as_u64().unwrap(),
                )
            })
            .collect();
        spans.sort();
        expected.push(spans);
    }
    let outputs_path = dir.path().join("outputs.jsonl");
    std::fs::write(&outputs_path, outputs).unwrap();
    let preds = dir.path().join("preds.json");
    ok(&[
        "offsets",
        "--input",
        p(&outputs_path),
        "--raw-text-dir",
        p(&corpus.join("raw_text")),
        "--out",
        p(&preds),
        "--keep-decision",
    ]);
    let preds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&preds).unwrap()).unwrap();
    let mut same = 0;
    assert_eq!(preds.as_array().unwrap().len(), expected.len());
    for (entry, want) in preds.as_array().unwrap().iter().zip(&expected) {
        let mut got: Vec<(u64, u64, u64)> = entry["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["start_offset"].as_u64().unwrap(),
                    o["end_offset"].as_u64().unwrap(),
                    o["category"].as_u64().unwrap(),
                )
            })
            .collect();
        got.sort();
        same += usize::from(&got == want);
        assert!(
            entry["predictions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["decision"].is_string())
        );
    }
    // Only documents with same-category crossing spans may differ (they come back nested).
    assert!(
        same + 1 >= expected.len(),
        "{same} of {} documents round-tripped",
        expected.len()
    );
}

#[test]
fn tag_writes_the_reference_csv_layout() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    ok(&["synth", "--out", p(&corpus), "--docs", "4"]);
    let rows = dir.path().join("rows.out");
    tag(&corpus, "train", &rows, &["--format", "csv"]);
    let text = std::fs::read_to_string(&rows).unwrap();
    assert!(text.starts_with("file_id,raw_text,gold_span,gold_offsets\n"));
    assert!(
        text.contains("[{\"\"start_offset\"\": "),
        "offsets as json.dumps writes them"
    );
}

#[test]
fn bad_input_is_reported_with_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    ok(&["synth", "--out", p(&corpus), "--docs", "3"]);
    let split = std::fs::read_to_string(corpus.join("splits/train.txt")).unwrap();
    let first = split.lines().next().unwrap().to_string();

    // Malformed JSONL: the line is named.
    let input = dir.path().join("bad.jsonl");
    std::fs::write(
        &input,
        format!("{{\"file_id\": \"{first}\", \"predicted\": \"x\"}}\n{{oops\n"),
    )
    .unwrap();
    let err = fails(&[
        "offsets",
        "--input",
        p(&input),
        "--raw-text-dir",
        p(&corpus.join("raw_text")),
        "--out",
        p(&dir.path().join("o.json")),
    ]);
    assert!(err.contains("bad.jsonl: line 2"), "{err}");

    // Missing raw text: the file is named, and no output is left behind.
    std::fs::write(&input, "{\"file_id\": \"9_9_9\", \"predicted\": \"x\"}\n").unwrap();
    let out = dir.path().join("o.json");
    let err = fails(&[
        "offsets",
        "--input",
        p(&input),
        "--raw-text-dir",
        p(&corpus.join("raw_text")),
        "--out",
        p(&out),
    ]);
    assert!(err.contains("9_9_9.txt"), "{err}");
    assert!(!out.exists());

    // Broken gold JSON: file, line and column.
    std::fs::write(
        corpus.join("data").join(format!("{first}.json")),
        "{\n  \"annotations\": [,]\n}",
    )
    .unwrap();
    let err = fails(&[
        "tag",
        "--gold-dir",
        p(&corpus.join("data")),
        "--raw-text-dir",
        p(&corpus.join("raw_text")),
        "--split",
        p(&corpus.join("splits/train.txt")),
        "--out",
        p(&dir.path().join("t.jsonl")),
    ]);
    assert!(err.contains(&format!("{first}.json:2:")), "{err}");

    // Invalid flag values are refused by the parser.
    let err = fails(&["synth", "--out", p(&corpus), "--miss-rate", "1.5"]);
    assert!(err.contains("probability"), "{err}");
}

#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&[
        "demo",
        "--out",
        p(dir.path()),
        "--docs",
        "20",
        "--models",
        "2",
    ]);
    assert!(out.contains("[6/10] official MedDec scores"), "{out}");
    assert!(out.contains("ensemble:scc"), "{out}");
    let summary_of = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
    };
    // The training step trains, writes a PEFT adapter and its loss curve, merges and tags.
    let training = &summary_of(dir.path())["training"];
    assert_eq!(training["steps"], 16, "{training}");
    assert_eq!(training["merged_modules"], 31, "{training}");
    assert_eq!(training["tagged"], 2, "{training}");
    // The pipeline step trains the three variants and the encoder, and scores them and their
    // ensemble, whose gain over the best single model it reports.
    let pipeline = &summary_of(dir.path())["pipeline"];
    let systems: Vec<&str> = pipeline["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["system"].as_str().unwrap())
        .collect();
    assert_eq!(
        systems,
        ["dft", "grpo", "pseudo", "encoder", "ensemble"],
        "{pipeline}"
    );
    assert!(pipeline["ensemble_span_f1_gain"].is_f64(), "{pipeline}");
    assert!(dir.path().join("run/consensus/params.json").is_file());
    assert!(dir.path().join("run/encoder/model/config.json").is_file());
    let adapter = dir.path().join("training/adapter");
    for file in [
        "adapter_model.safetensors",
        "adapter_config.json",
        "loss.svg",
    ] {
        assert!(adapter.join(file).is_file(), "{file} missing");
    }
    // Without the WebAssembly builds (none at the default paths from here) the optional steps
    // are skipped and say so; with --strict that is an error. The viewer is written anyway when
    // its package was compiled into the binary (cli/build.rs: as in CI, where build-web.sh runs
    // before the tests).
    let summary = summary_of(dir.path());
    assert_eq!(summary["plugins"], "skipped");
    if cfg!(lamar_viewer_embedded) {
        let index = summary["viewer"].as_str().expect("the viewer's index.html");
        assert!(Path::new(index).is_file(), "{index} missing");
        assert_eq!(
            Path::new(index),
            dir.path().join("viewer/index.html"),
            "the viewer is written inside --out"
        );
    } else {
        assert_eq!(summary["viewer"], "skipped");
    }
    let err = fails(&[
        "demo",
        "--strict",
        "--out",
        p(&dir.path().join("strict")),
        "--docs",
        "20",
        "--models",
        "2",
    ]);
    assert!(
        err.contains("lamar_plugin_boundary_vote.wasm not found"),
        "{err}"
    );
    // The plugin step runs when the example plugins are built (as CI builds them) and is
    // otherwise skipped with a note.
    let plugin_dir = plugin_build::plugin("lamar-plugin-boundary-vote")
        .parent()
        .unwrap()
        .to_path_buf();
    let out = ok(&[
        "demo",
        "--out",
        p(&dir.path().join("with_plugins")),
        "--docs",
        "20",
        "--models",
        "2",
        "--plugin-dir",
        p(&plugin_dir),
    ]);
    assert!(
        out.contains("identical to the native consensus") && out.contains(": yes"),
        "{out}"
    );
    assert!(out.contains("plugin:majority_voter"), "{out}");
    let with_plugins = summary_of(&dir.path().join("with_plugins"));
    assert_eq!(
        with_plugins["plugins"]["boundary_vote_identical_to_native"],
        true
    );
    let rewards = with_plugins["plugins"]["mean_exact_match_reward_on_val"]
        .as_object()
        .unwrap();
    assert_eq!(rewards.len(), 2, "one mean reward per model");
    assert!(
        with_plugins["test_scores"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["model"] == "plugin:majority_voter")
    );
    assert_eq!(
        summary["round_trip_rows"]["exact"],
        summary["round_trip_rows"]["total"]
    );
    for model in summary["test_scores"].as_array().unwrap() {
        let name = model["model"].as_str().unwrap();
        let keys: &[&str] = if name.starts_with("model_") || name == "ensemble:scc" {
            &["span_f1", "token_f1", "final_score"]
        } else {
            &[]
        };
        for key in keys {
            let v = model[*key].as_f64().unwrap();
            assert!(v > 0.3 && v < 1.0, "{name} is noisy but useful: {key} {v}");
        }
    }
}

#[test]
fn help_explains_every_command() {
    let help = ok(&["--help"]);
    for cmd in [
        "demo", "synth", "tag", "offsets", "evaluate", "ensemble", "tune", "reward", "plugin",
        "classify",
    ] {
        assert!(help.contains(cmd), "{help}");
    }
    let help = ok(&["offsets", "--help"]);
    assert!(
        help.contains("not_in_text") && help.contains("--dropped"),
        "{help}"
    );
}

#[test]
fn spans_outside_their_text_are_warned_about_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    // Two bad spans in model 0's first entry: a negative start and an end past the text.
    let model_0 = synth_with_models(&corpus, 4, 2, &[]).swap_remove(0);
    let mut files: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model_0).unwrap()).unwrap();
    let first = &mut files[0];
    let id = first["file_name"].as_str().unwrap().to_string();
    let len = std::fs::read_to_string(corpus.join(format!("raw_text/{id}.txt")))
        .unwrap()
        .chars()
        .count() as i64;
    let spans = first["predictions"].as_array_mut().unwrap();
    let (negative, past) = (spans.len(), spans.len() + 1);
    spans.push(serde_json::json!({"start_offset": -3, "end_offset": 5, "category": 5}));
    spans.push(serde_json::json!({"start_offset": len - 2, "end_offset": len + 4, "category": 2}));
    std::fs::write(&model_0, serde_json::to_string(&files).unwrap()).unwrap();
    let model_1 = corpus.join("predictions/model_1.json");

    let (gold, texts) = (corpus.join("data"), corpus.join("raw_text"));
    let evaluate = |strict: bool| {
        let mut args = vec![
            "evaluate",
            "--gold-dir",
            p(&gold),
            "--raw-text-dir",
            p(&texts),
            "--predictions",
            p(&model_0),
            p(&model_1),
        ];
        if strict {
            args.push("--strict");
        }
        lamar(&args)
    };
    let warned = evaluate(false);
    assert!(warned.status.success());
    let stderr = String::from_utf8_lossy(&warned.stderr);
    let want_negative = format!("model_0.json: entry 0 (\"{id}\"), prediction {negative}: [-3, 5)");
    let want_past = format!(
        "model_0.json: entry 0 (\"{id}\"), prediction {past}: [{}, {}) lies outside the text ({len} characters)",
        len - 2,
        len + 4
    );
    assert!(
        stderr.contains(&want_negative) && stderr.contains(&want_past),
        "{stderr}"
    );
    assert_eq!(stderr.matches("warning:").count(), 2, "{stderr}");
    let refused = evaluate(true);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("2 predicted span(s)") && stderr.contains(&want_past),
        "{stderr}"
    );

    // The ensemble sees negative offsets alone, and with the texts the end past the text too.
    let out = dir.path().join("merged.json");
    let ensemble = |extra: &[&str]| {
        let mut args = vec!["ensemble", "--out", p(&out)];
        args.extend_from_slice(extra);
        args.extend(["--predictions", p(&model_0), p(&model_1)]);
        lamar(&args)
    };
    let alone = ensemble(&[]);
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert!(alone.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "prediction {negative}: [-3, 5) has a negative offset"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    let refused = ensemble(&["--raw-text-dir", p(&texts), "--strict"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains(&want_past),
        "{stderr}"
    );
}
