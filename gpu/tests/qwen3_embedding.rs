//! Parity of lamar's Qwen3-Embedding path with transformers on a tiny random Qwen3 snapshot
//! (`tests/golden/qwen3_embedding_tiny`, made by `gpu/tools/make_tiny_qwen3_embedding.py`):
//! the tokenizer's ids (end-of-text appended, truncation keeping it) and the L2-normalised
//! last-token embeddings that sentence-transformers computes with left padding, here from
//! right-padded batches and one text at a time.

use candle_core::{DType, Device};
use lamar_model::embed::{EmbedError, Qwen3Embedder};
use std::path::PathBuf;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/qwen3_embedding_tiny")
}

#[derive(serde::Deserialize)]
struct Expected {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    truncated_6: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

fn expected() -> Expected {
    serde_json::from_str(&std::fs::read_to_string(golden().join("expected.json")).unwrap()).unwrap()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn tokens_match_transformers_with_and_without_truncation() {
    let want = expected();
    let full = Qwen3Embedder::load(&golden(), DType::F32, &Device::Cpu, 256).unwrap();
    let short = Qwen3Embedder::load(&golden(), DType::F32, &Device::Cpu, 6).unwrap();
    for (k, text) in want.texts.iter().enumerate() {
        assert_eq!(full.tokenize(text).unwrap(), want.ids[k], "text {k}");
        assert_eq!(
            short.tokenize(text).unwrap(),
            want.truncated_6[k],
            "text {k} cut to 6"
        );
    }
}

#[test]
fn embeddings_match_sentence_transformers_batched_and_alone() {
    let want = expected();
    let embedder = Qwen3Embedder::load(&golden(), DType::F32, &Device::Cpu, 256).unwrap();
    assert_eq!(embedder.dim(), want.embeddings[0].len());
    let batched = embedder.embed_tokens(&want.ids).unwrap();
    let diff = max_diff(&batched, &want.embeddings);
    eprintln!("batched: max difference {diff:e}");
    assert!(diff < 1e-5, "batched embeddings differ by {diff}");
    let alone: Vec<Vec<f32>> = want
        .ids
        .iter()
        .map(|ids| {
            embedder
                .embed_tokens(std::slice::from_ref(ids))
                .unwrap()
                .remove(0)
        })
        .collect();
    let diff = max_diff(&alone, &want.embeddings);
    assert!(diff < 1e-5, "one at a time, embeddings differ by {diff}");
    for row in &batched {
        let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn an_empty_text_is_an_error_naming_it() {
    let embedder = Qwen3Embedder::load(&golden(), DType::F32, &Device::Cpu, 256).unwrap();
    let err = embedder.embed_tokens(&[vec![1, 2], vec![]]).unwrap_err();
    assert!(matches!(err, EmbedError::Empty(1)), "{err}");
}

#[test]
fn a_missing_snapshot_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = match Qwen3Embedder::load(dir.path(), DType::F32, &Device::Cpu, 8) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an empty folder loaded"),
    };
    assert!(err.contains("config.json"), "{err}");
}
