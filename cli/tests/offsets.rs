//! `lamar offsets`: the reference mode reproduces LAMAR's `pred_to_offset` (goldens the reference
//! computed, tests/golden/reference_codec) and differs from lamar's default where a quirk
//! applies.

mod common;

use common::{ok, p};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn golden(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(rel)
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `(start, end, category)` of each prediction of a predictions-file entry.
fn spans_of(entry: &Value) -> Vec<(u64, u64, u64)> {
    entry["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start_offset"].as_u64().unwrap(),
                s["end_offset"].as_u64().unwrap(),
                s["category"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The entries of a predictions file, in file order.
fn entries(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_array().unwrap().clone()
}

#[test]
fn reference_mode_reproduces_pred_to_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (predictions, dropped) = (dir.path().join("p.json"), dir.path().join("d.csv"));
    ok(&[
        "offsets",
        "--reference",
        "--input",
        p(&golden("reference_codec/model_outputs.jsonl")),
        "--raw-text-dir",
        p(&golden("official/raw_text")),
        "--out",
        p(&predictions),
        "--dropped",
        p(&dropped),
    ]);
    let want = jsonl(&golden("reference_codec/offsets.jsonl"));
    let got = entries(&predictions);
    assert_eq!(got.len(), want.len(), "one entry per model output");
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["file_name"], w["file_name"], "entry {k}");
        assert_eq!(spans_of(g), spans_of(w), "entry {k} ({})", w["source"]);
    }
    let want = jsonl(&golden("reference_codec/dropped.jsonl"));
    let mut reader = csv::Reader::from_path(&dropped).unwrap();
    let got: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(got.len(), want.len(), "every dropped span listed");
    for (g, w) in got.iter().zip(&want) {
        let cut = |s: &str| s.chars().take(80).collect::<String>();
        assert_eq!(&g[0], w["file_id"].as_str().unwrap());
        assert_eq!(&g[1], w["category"].to_string());
        assert_eq!(&g[2], w["reason"].as_str().unwrap());
        assert_eq!(g[3], cut(w["span_text"].as_str().unwrap()));
        assert_eq!(g[4], cut(w["closest"].as_str().unwrap()));
    }
}

#[test]
fn reference_mode_takes_the_first_prefix_match_where_lamar_takes_the_nearest() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    // The same 60-character sentence twice; the model tags the second copy and adds words, so
    // the span is placed by its prefix: the reference takes the first occurrence, lamar the one
    // nearest the span's place in the output.
    let sentence = "start aspirin 81 mg daily for secondary prevention of stroke";
    let text = format!("Plan: {sentence}.\nLater: {sentence}.\n");
    std::fs::write(raw.join("d1.txt"), &text).unwrap();
    let first = text.find(sentence).unwrap() as u64;
    let second = text.rfind(sentence).unwrap() as u64;
    let predicted =
        format!("Plan: {sentence}.\nLater: <drug_decision>{sentence} and MI</drug_decision>.\n");
    let input = dir.path().join("outputs.jsonl");
    std::fs::write(
        &input,
        format!(
            "{}\n",
            serde_json::json!({"file_id": "d1", "predicted": predicted})
        ),
    )
    .unwrap();
    let start_with = |flags: &[&str]| -> u64 {
        let out = dir.path().join(format!("p{}.json", flags.concat()));
        let mut args = vec![
            "offsets",
            "--input",
            p(&input),
            "--raw-text-dir",
            p(&raw),
            "--out",
            p(&out),
        ];
        args.extend_from_slice(flags);
        let said = ok(&args);
        assert!(said.contains("placed: prefix 1"), "{said}");
        let spans = spans_of(&entries(&out)[0]);
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].2, 5, "drug_decision is category 5");
        spans[0].0
    };
    assert_eq!(start_with(&["--reference"]), first);
    assert_eq!(start_with(&[]), second);
    assert_eq!(start_with(&["--no-verbatim"]), second);
}

/// `lamar tag`'s rows as model outputs that reproduce the gold (`predicted` = `gold_span`).
fn as_outputs(rows: &Path, out: &Path) {
    let text: String = jsonl(rows)
        .iter()
        .map(|r| {
            serde_json::json!({"file_id": r["file_id"], "predicted": r["gold_span"]}).to_string()
                + "\n"
        })
        .collect();
    std::fs::write(out, text).unwrap();
}

#[test]
fn windows_of_a_document_are_placed_in_it_and_joined() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    ok(&["synth", "--out", p(&corpus), "--docs", "12", "--seed", "5"]);
    let raw = corpus.join("raw_text");
    let mut results = Vec::new();
    for (name, extra) in [
        ("whole", &[][..]),
        ("windows", &["--window-chars", "150"][..]),
    ] {
        let rows = dir.path().join(format!("{name}.jsonl"));
        common::tag(&corpus, "train", &rows, extra);
        let outputs = dir.path().join(format!("{name}-outputs.jsonl"));
        as_outputs(&rows, &outputs);
        let placed = dir.path().join(format!("{name}.json"));
        ok(&[
            "offsets",
            "--input",
            p(&outputs),
            "--raw-text-dir",
            p(&raw),
            "--out",
            p(&placed),
        ]);
        results.push(entries(&placed));
    }
    let windows = jsonl(&dir.path().join("windows.jsonl"));
    assert!(
        windows.len() > 3 * results[0].len(),
        "the documents were cut"
    );
    // One entry per document, with the spans the whole documents give.
    assert_eq!(results[1].len(), results[0].len());
    for (whole, joined) in results[0].iter().zip(&results[1]) {
        assert_eq!(whole["file_name"], joined["file_name"]);
        assert!(!spans_of(whole).is_empty());
        assert_eq!(spans_of(whole), spans_of(joined), "{}", whole["file_name"]);
    }
}
