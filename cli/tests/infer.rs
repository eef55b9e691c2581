//! `lamar infer` end to end on the CPU with a tiny random Qwen3.5 snapshot (the test tokenizer
//! and chat template of gpu/assets/tiny-chat): batching does not change results, interrupted runs
//! resume, CSV and custom prompts work, and bad input is reported with its file.

mod common;

use common::{fails, ok, p};
use lamar_core::formats::inference::InferenceRecord;
use std::path::{Path, PathBuf};

/// `lamar infer --model M --input I --out O` followed by `extra`.
fn infer<'a>(model: &'a Path, input: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "infer",
        "--model",
        p(model),
        "--input",
        p(input),
        "--out",
        p(out),
    ];
    args.extend_from_slice(extra);
    args
}

/// A tiny random snapshot with the test tokenizer and chat template.
fn snapshot(dir: &Path) -> PathBuf {
    let snap = dir.join("snapshot");
    lamar_model::qwen35::random::write_tiny_snapshot(&snap, 11).unwrap();
    snap
}

fn documents(dir: &Path) -> PathBuf {
    let texts = [
        "Admission Date: [**2151-8-2**]\nStarted metoprolol 25 mg daily.",
        "Follow up with cardiology in 2 weeks.",
        "Unicode é, 心房 and {braces} {raw_text} kept as text.\n\n",
        "CT head negative for bleed. Will repeat INR tomorrow.",
        "Short.",
    ];
    let mut jsonl = String::new();
    for (k, t) in texts.iter().enumerate() {
        jsonl.push_str(
            &serde_json::json!({"file_id": format!("doc{k}"), "raw_text": t}).to_string(),
        );
        jsonl.push('\n');
    }
    let path = dir.join("docs.jsonl");
    std::fs::write(&path, jsonl).unwrap();
    path
}

fn records(path: &Path) -> Vec<InferenceRecord> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sorted(mut r: Vec<InferenceRecord>) -> Vec<InferenceRecord> {
    r.sort_by(|a, b| a.file_id.cmp(&b.file_id));
    r
}

fn same(a: &[InferenceRecord], b: &[InferenceRecord]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.file_id, y.file_id);
        assert_eq!(x.predicted, y.predicted, "{}", x.file_id);
        assert_eq!(x.new_tokens, y.new_tokens);
        assert!((x.entropy - y.entropy).abs() < 1e-4, "{}", x.file_id);
    }
}

#[test]
fn batches_resume_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot(dir.path());
    let docs = documents(dir.path());
    let run = |out: &Path, batch: &str| {
        let extra = [
            "--batch-size",
            batch,
            "--max-new-tokens",
            "12",
            "--device",
            "cpu",
        ];
        ok(&infer(&snap, &docs, out, &extra))
    };
    let alone = dir.path().join("alone.jsonl");
    let stdout = run(&alone, "1");
    assert!(stdout.contains("tagged 5 documents"), "{stdout}");
    assert!(stdout.contains("lamar-tagging-v1"), "{stdout}");
    let alone = sorted(records(&alone));
    assert!(alone.iter().all(|r| r.new_tokens > 0 && r.entropy > 0.0));
    // Three slots (continuous batching: left padding, admissions, shrinking) = one at a time.
    let batched = dir.path().join("batched.jsonl");
    run(&batched, "3");
    same(&sorted(records(&batched)), &alone);
    // A second run finds everything done.
    assert!(run(&batched, "3").contains("already done (5)"));
    // Interrupted mid-write: the cut record is redone, the others are kept.
    let text = std::fs::read_to_string(&batched).unwrap();
    let keep = text.trim_end().rfind('\n').unwrap() + 1;
    std::fs::write(&batched, format!("{}{{\"file_id\": \"do", &text[..keep])).unwrap();
    let stdout = run(&batched, "3");
    assert!(stdout.contains("resuming: 4 documents"), "{stdout}");
    assert!(stdout.contains("tagged 1 documents"), "{stdout}");
    same(&sorted(records(&batched)), &alone);
    // CSV output with the reference's columns, and a custom prompt.
    let prompt = dir.path().join("prompt.txt");
    std::fs::write(&prompt, "Tag {{decisions}} in:\n{raw_text}").unwrap();
    let csv = dir.path().join("out.csv");
    let extra = [
        "--max-new-tokens",
        "4",
        "--prompt-file",
        p(&prompt),
        "--device",
        "cpu",
    ];
    let stdout = ok(&infer(&snap, &docs, &csv, &extra));
    assert!(stdout.contains("prompt.txt sha256:"), "{stdout}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("file_id,raw_text,predicted,entropy\n"));
    let rows = lamar_core::formats::rows::read_model_outputs(&csv).unwrap();
    assert_eq!(rows.len(), 5);
}

#[test]
fn bad_input_is_reported_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let docs = documents(dir.path());
    let out = dir.path().join("o.jsonl");
    let missing = dir.path().join("no-model");
    let err = fails(&infer(&missing, &docs, &out, &["--device", "cpu"]));
    assert!(err.contains("no-model"), "{err}");
    let prompt = dir.path().join("bad.txt");
    std::fs::write(&prompt, "Tag:\n{document}").unwrap();
    let err = fails(&infer(
        &missing,
        &docs,
        &out,
        &["--prompt-file", p(&prompt)],
    ));
    assert!(
        err.contains("bad.txt:2:1: unknown field {document}"),
        "{err}"
    );
    let bad_docs = dir.path().join("bad.jsonl");
    std::fs::write(&bad_docs, "{\"file_id\": \"a\"}\n").unwrap();
    let err = fails(&infer(&missing, &bad_docs, &out, &[]));
    assert!(
        err.contains("bad.jsonl") && err.contains("raw_text"),
        "{err}"
    );
    if !cfg!(feature = "cuda") {
        let snap = snapshot(dir.path());
        let err = fails(&infer(&snap, &docs, &out, &["--device", "cuda"]));
        assert!(err.contains("without CUDA"), "{err}");
    }
}

#[test]
fn window_chars_tags_each_document_in_windows_of_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let model = snapshot(dir.path());
    let input = documents(dir.path());
    let out = dir.path().join("windows.jsonl");
    ok(&infer(
        &model,
        &input,
        &out,
        &[
            "--window-chars",
            "40",
            "--max-new-tokens",
            "4",
            "--device",
            "cpu",
        ],
    ));
    let ids: Vec<String> = sorted(records(&out))
        .into_iter()
        .map(|r| r.file_id)
        .collect();
    // doc0's two lines are tagged apart; the blank tail of doc2 is not tagged.
    assert!(ids.contains(&"doc0@0-31".to_string()), "{ids:?}");
    assert!(ids.contains(&"doc0@31-62".to_string()), "{ids:?}");
    assert!(ids.iter().any(|i| i.starts_with("doc2@0-")), "{ids:?}");
    assert!(ids.contains(&"doc4@0-6".to_string()), "{ids:?}");
    assert_eq!(ids.len(), 6, "{ids:?}");
    let err = fails(&infer(&model, &input, &out, &["--window-chars", "0"]));
    assert!(err.contains("--window-chars must be at least 1"), "{err}");
}
