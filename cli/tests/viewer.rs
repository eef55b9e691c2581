//! The viewer end to end: `lamar view` on a synthetic corpus, the page opened in headless
//! Chromium (through chromedriver, `wasm/tests/browser/viewer_e2e.py`), the scores and span
//! lines it shows compared with native `lamar ensemble` + `lamar evaluate`, a slider moved and
//! the recomputed scores compared again, and a screenshot saved to
//! `target/test-output/viewer.png`.
//!
//! Needs chromium, chromedriver and the viewer's WebAssembly package (`wasm/build-web.sh`).
//! Without them the test says so and passes, unless `LAMAR_REQUIRE_BROWSER=1` (CI sets it).

mod common;

use common::{ok as lamar, p, synth_with_models};
use lamar_core::grpo::{NamedScore, RolloutRecord};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Native scores of a predictions file: (span F1, token F1, worst group, final).
fn native_scores(corpus: &Path, predictions: &Path, out: &Path) -> [f64; 4] {
    lamar(&[
        "evaluate",
        "--gold-dir",
        p(&corpus.join("data")),
        "--raw-text-dir",
        p(&corpus.join("raw_text")),
        "--stats-csv",
        p(&corpus.join("stats.csv")),
        "--split",
        p(&corpus.join("splits/test.txt")),
        "--predictions",
        p(predictions),
        "--output",
        p(out),
    ]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    [
        v["span_f1"]["f1"].as_f64().unwrap(),
        v["token_f1"].as_f64().unwrap(),
        v["shared_task"]["worst_group_score"].as_f64().unwrap(),
        v["shared_task"]["final_score"].as_f64().unwrap(),
    ]
}

fn shown(row: &Value) -> [f64; 4] {
    ["span_f1", "token_f1", "worst_group", "final"].map(|k| row[k].as_f64().unwrap())
}

#[test]
fn viewer_in_headless_chromium_matches_native_lamar() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let pkg = workspace.join("target/lamar-web/pkg");
    let required = std::env::var_os("LAMAR_REQUIRE_BROWSER").is_some();
    let missing: Vec<&str> = [
        (!available("chromium")).then_some("chromium"),
        (!available("chromedriver")).then_some("chromedriver"),
        (!pkg.join("lamar_wasm_bg.wasm").is_file())
            .then_some("target/lamar-web/pkg (wasm/build-web.sh)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        assert!(
            !required,
            "LAMAR_REQUIRE_BROWSER is set but these are missing: {missing:?}"
        );
        eprintln!("SKIPPED viewer end-to-end test: missing {missing:?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let models = synth_with_models(&corpus, 60, 3, &["--seed", "21"]);
    let site = dir.path().join("site");
    let (raw, gold) = (corpus.join("raw_text"), corpus.join("data"));
    let (stats, split) = (corpus.join("stats.csv"), corpus.join("splits/test.txt"));
    // A GRPO rollout log: two groups of two completions, one of them tagged.
    let rollouts = dir.path().join("rollouts.jsonl");
    let record = |step: usize, index: usize, completion: &str| RolloutRecord {
        step,
        prompt_id: format!("doc-{step}"),
        index,
        completion: completion.into(),
        tokens: 5,
        finished: index == 0,
        in_loss: index == 0,
        rewards: vec![NamedScore {
            name: "fidelity".into(),
            value: Some(index as f64),
        }],
        advantage: if index == 0 { -0.7 } else { 0.7 },
        dropped: false,
    };
    let log: String = [
        record(1, 0, "Started <drug_decision>aspirin</drug_decision>."),
        record(1, 1, "Started aspirin."),
        record(2, 0, "No tags."),
        record(2, 1, "None either."),
    ]
    .iter()
    .map(|r| serde_json::to_string(r).unwrap() + "\n")
    .collect();
    std::fs::write(&rollouts, log).unwrap();
    // A retrieval result: the first test document given two notes, whose texts come in a notes
    // file (the document's own from the raw texts).
    let first_doc = std::fs::read_to_string(corpus.join("splits/test.txt"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let neighbours = dir.path().join("neighbours.jsonl");
    let matches: String = [(1, 0.93, "note-a"), (2, 0.81, "note-b")]
        .iter()
        .map(|(rank, score, note)| {
            serde_json::json!({"split": "test", "query_idx": 0, "query_file_id": first_doc,
                "rank": rank, "score": score, "ref_idx": rank, "ref_file_id": note})
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&neighbours, matches).unwrap();
    let notes = dir.path().join("chosen.jsonl");
    std::fs::write(
        &notes,
        "{\"file_id\": \"note-a\", \"raw_text\": \"Note A: started heparin.\"}\n\
         {\"file_id\": \"note-b\", \"raw_text\": \"Note B: stop aspirin.\"}\n",
    )
    .unwrap();
    let mut view = vec![
        "view",
        "--retrieval",
        p(&neighbours),
        "--notes",
        p(&notes),
        "--rollouts",
        p(&rollouts),
        "--raw-text-dir",
        p(&raw),
        "--gold-dir",
        p(&gold),
        "--stats-csv",
        p(&stats),
        "--split",
        p(&split),
        "--pkg",
        p(&pkg),
        "--out",
        p(&site),
        "--predictions",
    ];
    view.extend(models.iter().map(|m| p(m)));
    lamar(&view);

    // Native expectations: default thresholds, then support 0.7.
    let merge = |out: &Path, support: &str| {
        let mut args = vec![
            "ensemble",
            "--min-cluster-support",
            support,
            "--out",
            p(out),
            "--predictions",
        ];
        args.extend(models.iter().map(|m| p(m)));
        lamar(&args);
    };
    let (default, strict) = (
        dir.path().join("default.json"),
        dir.path().join("strict.json"),
    );
    merge(&default, "0.34");
    merge(&strict, "0.7");
    let eval = dir.path().join("eval.json");
    let want_default = native_scores(&corpus, &default, &eval);
    let want_strict = native_scores(&corpus, &strict, &eval);
    let want_model0 = native_scores(&corpus, &models[0], &eval);

    let screenshot = workspace.join("target/test-output/viewer.png");
    let out = Command::new("python3")
        .arg(workspace.join("wasm/tests/browser/viewer_e2e.py"))
        .arg(&site)
        .arg(&screenshot)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let before = &got["before"];
    assert_eq!(before["errors"], serde_json::json!([]), "{got}");
    let close = |a: [f64; 4], b: [f64; 4]| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(
        close(shown(&before["scores"]["model_0.json"]), want_model0),
        "{got}"
    );
    assert!(
        close(shown(&before["scores"]["ensemble:scc"]), want_default),
        "{got}"
    );
    assert!(
        close(shown(&got["after"]["scores"]["ensemble:scc"]), want_strict),
        "{got}"
    );
    assert_ne!(want_default, want_strict);

    // The merged span lines drawn for the open document are the native merged spans.
    let doc = before["doc"].as_str().unwrap();
    let native: Value = serde_json::from_str(&std::fs::read_to_string(&default).unwrap()).unwrap();
    let count = native
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file_name"] == doc)
        .map_or(0, |f| f["predictions"].as_array().unwrap().len());
    assert!(count > 0);
    assert_eq!(
        before["merged_spans"].as_u64().unwrap() as usize,
        count,
        "{doc}"
    );
    let test_docs = std::fs::read_to_string(corpus.join("splits/test.txt")).unwrap();
    assert_eq!(
        before["documents"].as_u64().unwrap() as usize,
        test_docs.lines().count()
    );
    let details = got["details"].as_str().unwrap();
    assert!(
        details.contains("cluster:") && details.contains("support"),
        "{details}"
    );
    // The colour legend names the nine categories; the lane names say whose lines are whose,
    // span lines say it on hover, and hovering a lane's name leaves only its lines undimmed.
    let categories: Vec<&str> = before["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let names: Vec<&str> = lamar_core::category::Category::ALL
        .iter()
        .map(|c| c.meddec_name())
        .collect();
    assert_eq!(categories, names, "{got}");
    let lane_names = before["lane_names"].to_string();
    assert!(
        lane_names.contains("model_0.json") && lane_names.contains("merged (scc)"),
        "{lane_names}"
    );
    let bar_title = before["bar_title"].as_str().unwrap();
    assert!(bar_title.starts_with("merged (scc): "), "{bar_title}");
    let focus = &got["focus"];
    assert_eq!(
        focus["shown_lanes"],
        serde_json::json!(["merged"]),
        "{focus}"
    );
    assert!(focus["shown"].as_u64().unwrap() < focus["bars"].as_u64().unwrap());
    assert_eq!(focus["dim_after"], 0, "{focus}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    // The rollout log: its groups, completions and the tagged completion's two tags.
    let shown_rollouts = &before["rollouts"];
    assert_eq!(shown_rollouts["groups"], 2, "{got}");
    assert_eq!(shown_rollouts["completions"], 4, "{got}");
    assert_eq!(shown_rollouts["tags"], 2, "{got}");
    // The retrieval page: the document beside its two notes, texts and scores shown.
    let shown_retrieval = &before["retrieval"];
    assert_eq!(shown_retrieval["queries"], 1, "{got}");
    let titles: Vec<&str> = shown_retrieval["titles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 3, "{got}");
    assert!(titles[0].starts_with(&first_doc), "{got}");
    assert!(
        titles[1].contains("note-a") && titles[1].contains("0.9300"),
        "{got}"
    );
    assert_eq!(
        shown_retrieval["texts"][2], "Note B: stop aspirin.",
        "{got}"
    );
    assert_eq!(shown_retrieval["missing"], 0, "{got}");
    // Bad input is reported by file name and the page keeps working.
    let bad = &got["bad"];
    let joined = |key: &str| {
        bad[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (errors, warnings) = (joined("errors"), joined("warnings"));
    assert!(errors.contains("broken.json"), "{errors}");
    assert!(
        warnings.contains("beyond.json: 1 span(s) end beyond"),
        "{warnings}"
    );
    assert!(warnings.contains("notes.pdf: ignored"), "{warnings}");
    assert!(
        errors.contains("bad_rollouts.jsonl: line 1: not a GRPO rollout record"),
        "{errors}"
    );
    assert_eq!(bad["status"], "ready", "{bad}");
    assert_eq!(bad["documents"], before["documents"], "{bad}");
    assert_eq!(
        bad["lanes"].as_u64().unwrap(),
        6,
        "3 models + beyond.json + merged + gold: {bad}"
    );
    eprintln!("in-browser timing: {}", got["timing"]);
}

/// An installed `lamar` writes the viewer from any folder: the package `wasm/build-web.sh`
/// built is compiled in (`cli/build.rs`), so `lamar view` without `--pkg`, run from a folder
/// with no package under it, writes the same site files as with `--pkg` naming the package.
#[test]
fn lamar_view_writes_its_compiled_in_package_from_any_folder() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let pkg = workspace.join("target/lamar-web/pkg");
    if !pkg.join("lamar_wasm_bg.wasm").is_file() {
        assert!(
            std::env::var_os("LAMAR_REQUIRE_BROWSER").is_none(),
            "LAMAR_REQUIRE_BROWSER is set but target/lamar-web/pkg is missing"
        );
        eprintln!("SKIPPED compiled-in viewer test: no target/lamar-web/pkg (wasm/build-web.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let model = synth_with_models(&corpus, 8, 1, &["--seed", "3"]).swap_remove(0);
    let view = |site: &str, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lamar"))
            .current_dir(dir.path())
            .args([
                "view",
                "--raw-text-dir",
                p(&corpus.join("raw_text")),
                "--predictions",
                p(&model),
                "--out",
                site,
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lamar view {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    view("compiled-in", &[]);
    view("from-folder", &["--pkg", p(&pkg)]);
    for file in ["lamar_wasm.js", "lamar_wasm_bytes.js", "index.html"] {
        let read = |site: &str| std::fs::read(dir.path().join(site).join(file)).unwrap();
        assert!(
            read("compiled-in") == read("from-folder"),
            "{file} differs between the compiled-in package and target/lamar-web/pkg"
        );
    }
}
