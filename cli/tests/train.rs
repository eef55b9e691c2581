//! `lamar train dft` end to end on the CPU: tagged rows from `lamar tag`, a tiny random Qwen3.5
//! snapshot, a PEFT adapter that `lamar infer --adapter` then loads; bad input is reported.

mod common;

use common::{fails, ok, p, tag};

#[test]
fn train_writes_an_adapter_that_infer_loads() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    ok(&["synth", "--out", p(&corpus), "--docs", "6", "--seed", "3"]);
    let rows = dir.path().join("train.jsonl");
    tag(&corpus, "train", &rows, &[]);
    let snapshot = dir.path().join("snapshot");
    lamar_model::qwen35::random::write_tiny_snapshot(&snapshot, 2).unwrap();
    let adapter = dir.path().join("adapter");
    let said = ok(&[
        "train",
        "dft",
        "--model",
        p(&snapshot),
        "--data",
        p(&rows),
        "--out",
        p(&adapter),
        "--rank",
        "4",
        "--alpha",
        "8",
        "--epochs",
        "1",
        "--accumulation",
        "2",
        "--max-length",
        "3000",
        "--lr",
        "1e-3",
    ]);
    assert!(
        said.contains("trained") && said.contains("cut at 3000 tokens"),
        "{said}"
    );
    for file in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "metrics.jsonl",
        "loss.svg",
    ] {
        assert!(adapter.join(file).is_file(), "{file} missing");
    }
    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(adapter.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let train_rows = std::fs::read_to_string(&rows).unwrap().lines().count();
    assert_eq!(
        metrics.len(),
        train_rows.div_ceil(2),
        "one line per optimiser step"
    );
    assert!(
        metrics
            .iter()
            .all(|m| m["loss"].as_f64().unwrap().is_finite())
    );
    // The adapter loads for tagging.
    let docs = dir.path().join("docs.jsonl");
    std::fs::write(
        &docs,
        "{\"file_id\": \"a\", \"raw_text\": \"Started lasix 40 mg daily.\"}\n",
    )
    .unwrap();
    let tagged = dir.path().join("tagged.jsonl");
    let said = ok(&[
        "infer",
        "--model",
        p(&snapshot),
        "--adapter",
        p(&adapter),
        "--input",
        p(&docs),
        "--out",
        p(&tagged),
        "--device",
        "cpu",
        "--max-new-tokens",
        "8",
    ]);
    assert!(said.contains("tagged 1 documents"), "{said}");
    // Merged into the weights, the adapter tags the same as applied at run time.
    let merged = dir.path().join("merged");
    let said = ok(&[
        "export",
        "merge",
        "--model",
        p(&snapshot),
        "--adapter",
        p(&adapter),
        "--out",
        p(&merged),
    ]);
    assert!(said.contains("merged 31 adapted modules"), "{said}");
    let tagged_merged = dir.path().join("tagged_merged.jsonl");
    ok(&[
        "infer",
        "--model",
        p(&merged),
        "--input",
        p(&docs),
        "--out",
        p(&tagged_merged),
        "--device",
        "cpu",
        "--max-new-tokens",
        "8",
    ]);
    let predicted = |path: &std::path::Path| -> String {
        let line = std::fs::read_to_string(path).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        v["predicted"].as_str().unwrap().to_string()
    };
    assert_eq!(predicted(&tagged_merged), predicted(&tagged));
    // A limit that leaves no response names the row; an empty file names the file.
    let err = fails(&[
        "train",
        "dft",
        "--model",
        p(&snapshot),
        "--data",
        p(&rows),
        "--out",
        p(&adapter),
        "--max-length",
        "100",
    ]);
    assert!(
        err.contains("train.jsonl: row 1") && err.contains("leaves no response"),
        "{err}"
    );
    // A tagged copy with a tag no category has, or text that is not the raw text, names the
    // row and says what is wrong.
    let bad = dir.path().join("bad.jsonl");
    let row = |id: &str, raw: &str, tagged: &str| {
        serde_json::json!({"file_id": id, "raw_text": raw, "gold_span": tagged,
            "gold_offsets": []})
        .to_string()
    };
    std::fs::write(
        &bad,
        [
            row(
                "a",
                "Start lasix.",
                "<drug_decision>Start lasix</drug_decision>.",
            ),
            row("b", "Start lasix.", "<drug>Start lasix</drug>."),
        ]
        .join("\n"),
    )
    .unwrap();
    let train_on = |data: &std::path::Path| {
        fails(&[
            "train",
            "dft",
            "--model",
            p(&snapshot),
            "--data",
            p(data),
            "--out",
            p(&dir.path().join("bad-run")),
        ])
    };
    let err = train_on(&bad);
    assert!(
        err.contains("bad.jsonl: row 2 (document b)") && err.contains("name no category"),
        "{err}"
    );
    std::fs::write(
        &bad,
        row(
            "c",
            "Start lasix.",
            "<drug_decision>Stop lasix</drug_decision>.",
        ),
    )
    .unwrap();
    let err = train_on(&bad);
    assert!(
        err.contains("bad.jsonl: row 1 (document c)") && err.contains("differs from raw_text"),
        "{err}"
    );
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let err = fails(&[
        "train",
        "dft",
        "--model",
        p(&snapshot),
        "--data",
        p(&empty),
        "--out",
        p(&adapter),
    ]);
    assert!(
        err.contains("empty.jsonl") && err.contains("no training rows"),
        "{err}"
    );
}
