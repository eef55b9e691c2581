//! `lamar pseudo extract` end to end: a NOTEEVENTS-shaped file, plain and gzipped, with
//! multi-line quoted notes, other categories, MedDec documents to leave out and rows that
//! cannot be used (reported with their line).

mod common;

use common::{fails, lamar, p};
use std::io::Write;

const NOTES: &str = "\"ROW_ID\",\"SUBJECT_ID\",\"HADM_ID\",\"CHARTDATE\",\"CHARTTIME\",\"STORETIME\",\"CATEGORY\",\"DESCRIPTION\",\"CGID\",\"ISERROR\",\"TEXT\"
174,22532,167853,2151-08-04,,,\"Discharge summary\",\"Report\",,,\"Admission Date:  [**2151-7-16**]
Discharge Date: \"\"soon\"\"

Service: ADDENDUM\"
175,13702,107527,2118-06-14,,,\"Discharge summary\",\"Report\",,,\"a MedDec note\"
176,13702,,2118-06-14,,,\"Discharge summary\",\"Report\",,,\"no admission id\"
178,1,2,2100-01-01,,,\"Nursing/other\",\"Report\",,,\"a nursing note\"
179,9,10,2100-01-02,,,\"Discharge summary\",\"Addendum\",,,\"an addendum\"
";

fn ids(path: &std::path::Path) -> Vec<String> {
    common::json_lines(path)
        .iter()
        .map(|v| v["file_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn extract_keeps_unlabeled_discharge_summaries_from_plain_and_gzipped_files() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("NOTEEVENTS.csv");
    std::fs::write(&plain, NOTES).unwrap();
    let gz = dir.path().join("NOTEEVENTS.csv.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
    encoder.write_all(NOTES.as_bytes()).unwrap();
    encoder.finish().unwrap();
    let split = dir.path().join("train.txt");
    std::fs::write(&split, "13702_107527_175\n").unwrap();
    for input in [&plain, &gz] {
        let out = dir.path().join("out/unlabeled.jsonl");
        let run = lamar(&[
            "pseudo",
            "extract",
            "--noteevents",
            p(input),
            "--exclude",
            p(&split),
            "--out",
            p(&out),
        ]);
        assert!(run.status.success(), "{run:?}");
        let said = String::from_utf8(run.stdout).unwrap();
        let warned = String::from_utf8(run.stderr).unwrap();
        assert!(
            said.starts_with("2 discharge summaries written")
                && said.contains(
                    "5 records read, 1 of other categories, 1 MedDec documents left out, 1 skipped"
                ),
            "{said}"
        );
        assert!(warned.contains(":7: skipped: no HADM_ID"), "{warned}");
        assert_eq!(ids(&out), ["22532_167853_174", "9_10_179"]);
        let first = &common::json_lines(&out)[0];
        assert_eq!(
            first["text"],
            "Admission Date:  [**2151-7-16**]\nDischarge Date: \"soon\"\n\nService: ADDENDUM"
        );
        assert!(!out.with_extension("jsonl.partial").exists());
    }
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "id,text\n1,x\n").unwrap();
    let err = fails(&[
        "pseudo",
        "extract",
        "--noteevents",
        p(&other),
        "--out",
        p(&dir.path().join("x.jsonl")),
    ]);
    assert!(
        err.contains("other.csv") && err.contains("no ROW_ID column"),
        "{err}"
    );
}

#[test]
fn embed_and_retrieve_find_each_document_its_own_copy_and_write_inference_input() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, other) = (dir.path().join("corpus"), dir.path().join("other"));
    common::ok(&["synth", "--out", p(&corpus), "--docs", "30", "--seed", "4"]);
    common::ok(&["synth", "--out", p(&other), "--docs", "20", "--seed", "9"]);
    let rows = dir.path().join("test.jsonl");
    common::tag(&corpus, "test", &rows, &[]);
    // The unlabeled notes: a copy of every test document (under another id) among the notes of
    // another corpus.
    let mut unlabeled = String::new();
    let mut copies = Vec::new();
    for line in std::fs::read_to_string(&rows).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = format!("copy-of-{}", row["file_id"].as_str().unwrap());
        unlabeled.push_str(
            &serde_json::json!({"file_id": id, "description": "Report", "text": row["raw_text"]})
                .to_string(),
        );
        unlabeled.push('\n');
        copies.push((row["file_id"].as_str().unwrap().to_string(), id));
    }
    for entry in std::fs::read_dir(other.join("raw_text")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let id = path.file_stem().unwrap().to_str().unwrap().to_string();
        unlabeled.push_str(
            &serde_json::json!({"file_id": id, "description": "Report", "text": text}).to_string(),
        );
        unlabeled.push('\n');
    }
    unlabeled.push_str(
        &serde_json::json!({"file_id": "addendum", "description": "Addendum", "text": "x"})
            .to_string(),
    );
    unlabeled.push('\n');
    let notes = dir.path().join("unlabeled.jsonl");
    std::fs::write(&notes, unlabeled).unwrap();
    let (q, c) = (
        dir.path().join("test.safetensors"),
        dir.path().join("reports.safetensors"),
    );
    common::ok(&["pseudo", "embed", "--input", p(&rows), "--out", p(&q)]);
    let said = common::ok(&[
        "pseudo",
        "embed",
        "--input",
        p(&notes),
        "--out",
        p(&c),
        "--description",
        "Report",
    ]);
    assert!(
        said.starts_with(&format!("{} notes embedded", copies.len() + 20)),
        "{said}"
    );
    let (out, chosen) = (
        dir.path().join("neighbours.jsonl"),
        dir.path().join("chosen.jsonl"),
    );
    common::ok(&[
        "pseudo",
        "retrieve",
        "--queries",
        p(&q),
        "--corpus",
        p(&c),
        "--k",
        "2",
        "--out",
        p(&out),
        "--corpus-notes",
        p(&notes),
        "--inference-input",
        p(&chosen),
    ]);
    let matches: Vec<serde_json::Value> = common::json_lines(&out);
    assert_eq!(matches.len(), 2 * copies.len());
    for (doc, copy) in &copies {
        let first = matches
            .iter()
            .find(|m| m["query_file_id"] == doc.as_str() && m["rank"] == 1)
            .unwrap();
        assert_eq!(first["ref_file_id"], copy.as_str());
        assert_eq!(first["score"], 1.0);
        assert_eq!(first["split"], "test");
    }
    let mut refs: Vec<&str> = matches
        .iter()
        .map(|m| m["ref_file_id"].as_str().unwrap())
        .collect();
    refs.sort_unstable();
    refs.dedup();
    assert_eq!(
        refs.len(),
        matches.len(),
        "every note goes to one document at most"
    );
    assert_eq!(
        std::fs::read_to_string(&chosen).unwrap().lines().count(),
        matches.len()
    );
    // The GPU path (wgpu) assigns the same notes.
    let on_gpu = dir.path().join("neighbours-gpu.jsonl");
    let gpu = lamar(&[
        "pseudo",
        "retrieve",
        "--queries",
        p(&q),
        "--corpus",
        p(&c),
        "--k",
        "2",
        "--out",
        p(&on_gpu),
        "--device",
        "gpu",
    ]);
    let said = String::from_utf8_lossy(&gpu.stderr);
    if gpu.status.success() {
        let theirs = common::json_lines(&on_gpu);
        assert_eq!(theirs.len(), matches.len());
        for (a, b) in matches.iter().zip(&theirs) {
            assert_eq!(
                (&a["query_file_id"], &a["rank"], &a["ref_file_id"]),
                (&b["query_file_id"], &b["rank"], &b["ref_file_id"])
            );
            let (x, y) = (a["score"].as_f64().unwrap(), b["score"].as_f64().unwrap());
            assert!((x - y).abs() < 1e-5, "{x} {y}");
        }
    } else if std::env::var_os("LAMAR_REQUIRE_WGPU").is_some() || !said.contains("no GPU adapter") {
        panic!("lamar pseudo retrieve --device gpu failed: {said}");
    } else {
        eprintln!("GPU retrieval skipped: {said}");
    }
    // Embeddings of another kind are refused, naming the file.
    let small = dir.path().join("small.safetensors");
    common::ok(&[
        "pseudo",
        "embed",
        "--input",
        p(&rows),
        "--out",
        p(&small),
        "--dim",
        "64",
    ]);
    let err = fails(&[
        "pseudo",
        "retrieve",
        "--queries",
        p(&small),
        "--corpus",
        p(&c),
        "--out",
        p(&out),
    ]);
    assert!(
        err.contains("small.safetensors") && err.contains("embed both the same way"),
        "{err}"
    );
}

#[test]
fn mix_appends_the_most_confident_pseudo_labels_with_their_targets_in_gold_span() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.jsonl");
    std::fs::write(
        &train,
        serde_json::json!({"file_id": "t1", "raw_text": "Give aspirin.", "gold_span": "Give <drug_decision>aspirin</drug_decision>.", "gold_offsets": []}).to_string() + "\n",
    )
    .unwrap();
    let predictions = dir.path().join("other.jsonl");
    let mut text = String::new();
    for (id, entropy) in [("u1", 0.3), ("u2", 0.1), ("u3", 0.9), ("u4", 0.2)] {
        text.push_str(&serde_json::json!({"file_id": id, "raw_text": "Stop heparin now.", "predicted": "<drug_decision>Stop heparin</drug_decision> now.", "entropy": entropy}).to_string());
        text.push('\n');
    }
    std::fs::write(&predictions, text).unwrap();
    let out = dir.path().join("mixed.jsonl");
    let said = common::ok(&[
        "pseudo",
        "mix",
        "--train",
        p(&train),
        "--predictions",
        p(&predictions),
        "--quantile",
        "0.5",
        "--out",
        p(&out),
    ]);
    assert!(
        said.starts_with("1 training rows + 2 of 4 pseudo-labelled notes"),
        "{said}"
    );
    let rows: Vec<serde_json::Value> = common::json_lines(&out);
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["file_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t1", "u2", "u4"]);
    assert_eq!(
        rows[1]["gold_span"],
        "<drug_decision>Stop heparin</drug_decision> now."
    );
    let err = fails(&[
        "pseudo",
        "mix",
        "--train",
        p(&train),
        "--predictions",
        p(&predictions),
        "--quantile",
        "10",
        "--out",
        p(&out),
    ]);
    assert!(err.contains("--quantile 10"), "{err}");
}

#[test]
fn explore_scores_validation_documents_alone_and_draws_the_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    common::ok(&["synth", "--out", p(&corpus), "--docs", "40", "--seed", "8"]);
    let rows = dir.path().join("val_rows.jsonl");
    common::tag(&corpus, "val", &rows, &[]);
    // The confident half of the outputs is the gold itself, the rest finds nothing.
    let rows: Vec<serde_json::Value> = common::json_lines(&rows);
    assert!(rows.len() >= 4);
    let mut val = String::new();
    for (k, r) in rows.iter().enumerate() {
        let predicted = if k < rows.len() / 2 {
            &r["gold_span"]
        } else {
            &r["raw_text"]
        };
        val.push_str(&serde_json::json!({"file_id": r["file_id"], "raw_text": r["raw_text"], "predicted": predicted, "entropy": 0.1 * (k + 1) as f64}).to_string());
        val.push('\n');
    }
    let val_path = dir.path().join("val_inferred.jsonl");
    std::fs::write(&val_path, &val).unwrap();
    let unlabeled = dir.path().join("other_inferred.jsonl");
    std::fs::write(
        &unlabeled,
        serde_json::json!({"file_id": "u", "raw_text": "x", "predicted": "x", "entropy": 0.05})
            .to_string()
            + "\n",
    )
    .unwrap();
    let out = dir.path().join("explore");
    let said = common::ok(&[
        "pseudo",
        "explore",
        "--val-predictions",
        p(&val_path),
        "--gold-dir",
        p(&corpus.join("data")),
        "--unlabeled-predictions",
        p(&unlabeled),
        "--quantiles",
        "0,1",
        "--out-dir",
        p(&out),
    ]);
    assert!(said.contains("Spearman ρ of entropy"), "{said}");
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("exploration.json")).unwrap())
            .unwrap();
    let most_confident = &e["thresholds"][0];
    assert_eq!(most_confident["kept"], 1);
    assert_eq!(most_confident["span_f1"], 1.0, "the gold scores 1: {e}");
    assert_eq!(
        e["thresholds"][1]["kept"].as_u64().unwrap() as usize,
        rows.len()
    );
    assert_eq!(e["thresholds"][1]["unlabeled_kept"], 1);
    assert!(e["spearman_base"].as_f64().unwrap() < -0.5, "{e}");
    assert_eq!(
        std::fs::read_to_string(out.join("scores.jsonl"))
            .unwrap()
            .lines()
            .count(),
        rows.len()
    );
    assert!(
        std::fs::read_to_string(out.join("exploration.svg"))
            .unwrap()
            .contains("<circle")
    );
    // A document without gold is an error naming it (the reference scored it as empty).
    val.push_str(&serde_json::json!({"file_id": "nobody", "raw_text": "x", "predicted": "x", "entropy": 1.0}).to_string());
    val.push('\n');
    std::fs::write(&val_path, &val).unwrap();
    let err = fails(&[
        "pseudo",
        "explore",
        "--val-predictions",
        p(&val_path),
        "--gold-dir",
        p(&corpus.join("data")),
        "--unlabeled-predictions",
        p(&unlabeled),
        "--out-dir",
        p(&out),
    ]);
    assert!(err.contains("document nobody has no gold"), "{err}");
}

#[test]
fn qwen3_embeddings_equal_transformers_and_a_rerun_skips_what_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden/qwen3_embedding_tiny");
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("expected.json")).unwrap())
            .unwrap();
    let texts = golden["texts"].as_array().unwrap();
    let notes = dir.path().join("notes.jsonl");
    let lines: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(k, t)| serde_json::json!({"file_id": format!("n{k}"), "text": t}).to_string())
        .collect();
    std::fs::write(&notes, lines.join("\n")).unwrap();
    let out = dir.path().join("e.safetensors");
    let embed = |extra: &[&str]| {
        let mut args = vec![
            "pseudo",
            "embed",
            "--input",
            p(&notes),
            "--out",
            p(&out),
            "--embedder",
            "qwen3",
            "--model",
            p(&model),
            "--device",
            "cpu",
            "--batch",
            "2",
        ];
        args.extend_from_slice(extra);
        common::ok(&args)
    };
    embed(&[]);
    let read = || {
        lamar_core::pseudo::embeddings::EmbeddingFile::read(&out)
            .unwrap()
            .data
    };
    let want: Vec<f32> = golden["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    let got = read();
    assert_eq!(got.len(), want.len());
    let diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        diff < 1e-5,
        "embeddings differ from transformers' by {diff}"
    );
    let partial = dir.path().join("e.safetensors.partial");
    assert!(
        !partial.exists(),
        "the partial file is removed when the run completes"
    );
    // A killed run left note n1 done (with marker values) and half of another record: the
    // rerun keeps n1 as recorded and embeds the rest.
    let dim = want.len() / texts.len();
    let name = format!(
        "qwen3-embedding:{}",
        model
            .canonicalize()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
    );
    let mut bytes = serde_json::to_vec(&serde_json::json!({"embedder": name, "dim": dim})).unwrap();
    bytes.push(b'\n');
    bytes.extend(2u32.to_le_bytes());
    bytes.extend(b"n1");
    bytes.extend((0..dim).flat_map(|_| 0.5f32.to_le_bytes()));
    bytes.extend(2u32.to_le_bytes());
    bytes.extend(b"n2");
    bytes.extend([0u8; 5]);
    std::fs::write(&partial, bytes).unwrap();
    let said = embed(&[]);
    assert!(said.contains("5 notes embedded"), "{said}");
    let again = read();
    assert!(
        again[dim..2 * dim].iter().all(|&x| x == 0.5),
        "n1 was embedded again"
    );
    // The other notes as before (other batches: equal to rounding).
    let rest = again
        .iter()
        .zip(&got)
        .enumerate()
        .filter(|(k, _)| !(dim..2 * dim).contains(k))
        .map(|(_, (a, b))| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(rest < 1e-6, "a rerun changed other notes by {rest}");
    assert!(!partial.exists());
}
