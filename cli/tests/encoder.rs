//! The encoder baseline from the command line: `lamar export tiny-encoder`, `lamar train
//! encoder` on `lamar tag`'s rows, `lamar classify` into predictions that `lamar evaluate`
//! scores; and the errors a user meets, naming the file at fault.

mod common;

use common::{fails, ok, p, tag};

#[test]
fn train_classify_and_evaluate_an_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    ok(&["synth", "--out", p(&corpus), "--docs", "12", "--seed", "5"]);
    let rows = dir.path().join("train.jsonl");
    tag(&corpus, "train", &rows, &[]);
    let base = dir.path().join("base");
    let said = ok(&["export", "tiny-encoder", "--out", p(&base)]);
    assert!(said.contains("tiny random BERT"), "{said}");

    let model = dir.path().join("encoder");
    let said = ok(&[
        "train",
        "encoder",
        "--model",
        p(&base),
        "--data",
        p(&rows),
        "--out",
        p(&model),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--max-tokens",
        "64",
        "--lr",
        "1e-3",
        "--device",
        "cpu",
    ]);
    assert!(said.contains("trained the encoder for"), "{said}");
    for file in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "metrics.jsonl",
        "loss.svg",
    ] {
        assert!(model.join(file).is_file(), "{file} missing");
    }

    let predictions = dir.path().join("pred/train.json");
    let said = ok(&[
        "classify",
        "--model",
        p(&model),
        "--input",
        p(&rows),
        "--out",
        p(&predictions),
        "--max-tokens",
        "64",
        "--device",
        "cpu",
    ]);
    assert!(said.contains("tagged"), "{said}");
    let files: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&predictions).unwrap()).unwrap();
    let rows_count = std::fs::read_to_string(&rows).unwrap().lines().count();
    assert_eq!(files.as_array().unwrap().len(), rows_count);
    ok(&[
        "evaluate",
        "--gold-dir",
        p(&corpus.join("data")),
        "--raw-text-dir",
        p(&corpus.join("raw_text")),
        "--split",
        p(&corpus.join("splits/train.txt")),
        "--predictions",
        p(&predictions),
        "--strict",
    ]);
}

#[test]
fn encoder_errors_name_the_file_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(&rows, "{\"file_id\": \"a\", \"raw_text\": \"x\"}\n").unwrap();
    let err = fails(&[
        "train",
        "encoder",
        "--model",
        p(&dir.path().join("nowhere")),
        "--data",
        p(&rows),
        "--out",
        p(&dir.path().join("o")),
    ]);
    assert!(err.contains("rows.jsonl"), "{err}");

    let base = dir.path().join("base");
    ok(&["export", "tiny-encoder", "--out", p(&base)]);
    let config = base.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"bert\"", "\"gpt2\"")).unwrap();
    let err = fails(&[
        "classify",
        "--model",
        p(&base),
        "--input",
        p(&rows),
        "--out",
        p(&dir.path().join("p.json")),
    ]);
    assert!(err.contains("config.json") && err.contains("gpt2"), "{err}");
}
