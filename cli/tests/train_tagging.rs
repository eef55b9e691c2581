//! Training teaches tagging, through the command line: a tiny Qwen3.5 that copies a note but
//! writes no tags (`tests/golden/qwen35_tiny_copier`, pre-trained to copy with PyTorch) is
//! trained by `lamar train dft` on tagged windows of synthetic notes; tagging windows of other
//! notes with `lamar infer --adapter` then finds gold spans it could not find before.

mod common;

use common::{ok, p, tag};
use lamar_core::codec::{DecodeOptions, decode};
use lamar_core::formats::rows::{GoldOffset, TrainingRow};
use lamar_core::metrics::ExactSpanScore;
use std::path::{Path, PathBuf};

fn copier() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/qwen35_tiny_copier")
}

/// `lamar tag --window-chars 80` of a split, keeping windows of at most 70 characters that
/// hold a span; returns the rows and writes them to `out`.
fn windows(corpus: &Path, split: &str, out: &Path) -> Vec<TrainingRow> {
    let all = out.with_extension("all.jsonl");
    tag(corpus, split, &all, &["--window-chars", "80"]);
    let rows: Vec<TrainingRow> = std::fs::read_to_string(&all)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &TrainingRow| !r.gold_offsets.is_empty() && r.raw_text.chars().count() <= 70)
        .collect();
    let text: String = rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(out, text).unwrap();
    rows
}

/// Tags `rows` with the copier (and `adapter`) and scores the decoded spans against the gold:
/// `(span F1, tagged copies that hold any tag)`.
fn tag_and_score(
    dir: &Path,
    rows: &[TrainingRow],
    input: &Path,
    adapter: Option<&Path>,
) -> (f64, usize) {
    let out = dir.join(format!("tagged-{}.jsonl", adapter.is_some()));
    let model = copier();
    let mut args = vec![
        "infer",
        "--model",
        p(&model),
        "--input",
        p(input),
        "--out",
        p(&out),
        "--device",
        "cpu",
        "--max-new-tokens",
        "100",
        "--prompt-file",
    ];
    let prompt = dir.join("prompt.txt");
    args.push(p(&prompt));
    if let Some(a) = adapter {
        args.extend(["--adapter", p(a)]);
    }
    ok(&args);
    let predicted: std::collections::HashMap<String, String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["file_id"].as_str().unwrap().to_string(),
                v["predicted"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut counts = ExactSpanScore::default();
    let mut with_tags = 0;
    for row in rows {
        let tagged = &predicted[&row.file_id];
        with_tags += usize::from(tagged.contains("</"));
        let found = decode(tagged, &row.raw_text, &DecodeOptions::default()).plain_spans();
        let gold: Vec<_> = row
            .gold_offsets
            .iter()
            .filter_map(GoldOffset::span)
            .collect();
        counts.add(&gold, &found);
    }
    (counts.f1(), with_tags)
}

#[test]
fn training_teaches_a_copier_to_tag_notes_it_never_saw() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    ok(&["synth", "--out", p(&corpus), "--docs", "120", "--seed", "6"]);
    let train = dir.path().join("train.jsonl");
    let val = dir.path().join("val.jsonl");
    let train_rows = windows(&corpus, "train", &train);
    let val_rows = windows(&corpus, "val", &val);
    assert!(
        train_rows.len() > 200 && val_rows.len() > 30,
        "{} {}",
        train_rows.len(),
        val_rows.len()
    );
    std::fs::write(
        dir.path().join("prompt.txt"),
        "Tag the decisions:\n{raw_text}",
    )
    .unwrap();
    // Before: the copier copies, untagged.
    let (before, tagged_before) = tag_and_score(dir.path(), &val_rows, &val, None);
    assert_eq!((before, tagged_before), (0.0, 0));
    let adapter = dir.path().join("adapter");
    // Cross-entropy: DFT weighs each token's gradient by its probability, so tags the model
    // gives almost none (as this copier does) would hardly be learnt in a short run.
    let said = ok(&[
        "train",
        "dft",
        "--model",
        p(&copier()),
        "--data",
        p(&train),
        "--out",
        p(&adapter),
        "--prompt-file",
        p(&dir.path().join("prompt.txt")),
        "--loss",
        "ce",
        "--rank",
        "16",
        "--alpha",
        "32",
        "--lr",
        "3e-3",
        "--accumulation",
        "1",
        "--epochs",
        "3",
    ]);
    assert!(said.contains("trained"), "{said}");
    let (after, tagged_after) = tag_and_score(dir.path(), &val_rows, &val, Some(&adapter));
    eprintln!(
        "held-out windows: span F1 {before:.3} → {after:.3}; copies with tags {tagged_before} → \
         {tagged_after} of {}",
        val_rows.len()
    );
    // Over seeds 1–6 and 3407 this run ends between 0.057 and 0.241 (median 0.112); the exact
    // trajectory moves with floating-point summation order (a different CPU, activation
    // recomputation), so the bound sits below the lowest seen, far above the untrained 0.
    assert!(after >= 0.04, "span F1 on held-out windows only {after}");
    assert!(
        tagged_after * 4 >= val_rows.len(),
        "{tagged_after} of {}",
        val_rows.len()
    );
}
