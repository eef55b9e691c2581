//! Differential tests of the NLTK ports against the real NLTK, installed from PyPI.
//!
//! For each supported release the test makes a virtual environment under
//! `target/nltk-oracle/<version>` (once; `pip install nltk==<version>`), runs
//! `tests/python/nltk_tokens.py` on thousands of generated clinical-style texts plus the
//! synthetic corpus, and requires identical tokens and offsets.

mod common;

use common::{generated_texts, oracle, run_python};
use lamar_core::nltk::{NltkVersion, punkt, treebank, word_tokenize};
use lamar_core::synth::{SynthConfig, generate};
use serde_json::Value;

fn texts() -> Vec<String> {
    let mut texts = generated_texts(2500, 2026);
    texts.extend(
        generate(&SynthConfig { docs: 120, seed: 5 })
            .documents
            .into_iter()
            .map(|d| d.text),
    );
    texts
}

fn run_oracle(release: &str, texts: &[String]) -> Vec<Value> {
    let punkt_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/punkt_tab/english");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/nltk_tokens.py");
    let request = serde_json::json!({"punkt_dir": punkt_dir, "texts": texts});
    let out = run_python(
        oracle(release),
        script,
        request.to_string().as_bytes(),
        "the NLTK oracle",
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["version"], release);
    v["results"].as_array().unwrap().clone()
}

fn pairs(v: &Value) -> Vec<(usize, usize)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_u64().unwrap() as usize,
                p[1].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

fn check(release: &str, version: NltkVersion, full: bool) {
    let texts = texts();
    let results = run_oracle(release, &texts);
    assert_eq!(
        results.len(),
        texts.len(),
        "NLTK {release} answered every text"
    );
    let mut mismatches = Vec::new();
    for (text, want) in texts.iter().zip(&results) {
        let words: Vec<String> = want["words"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        if word_tokenize::word_tokenize(text, version) != words {
            mismatches.push(format!("word_tokenize {text:?}"));
        }
        if word_tokenize::token_spans(text, version) != pairs(&want["token_spans"]) {
            mismatches.push(format!("token spans {text:?}"));
        }
        if full {
            if punkt::sentence_spans(text, punkt::PunktParameters::english(), version)
                != pairs(&want["sentences"])
            {
                mismatches.push(format!("sentences {text:?}"));
            }
            let tb = treebank::span_tokenize(text, version);
            match (&tb, want["treebank"].is_array()) {
                (Ok(spans), true) if *spans == pairs(&want["treebank"]) => {}
                (Err(_), false) => {}
                _ => mismatches.push(format!("treebank {text:?}: {tb:?}")),
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} texts differ from NLTK {release}; first: {}",
        mismatches.len(),
        texts.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}

#[test]
fn matches_nltk_3_9_4() {
    check("3.9.4", NltkVersion::V3_9, true);
}

#[test]
fn matches_nltk_3_9_2() {
    check("3.9.2", NltkVersion::V3_9_2, false);
}

#[test]
fn matches_nltk_3_8_1() {
    check("3.8.1", NltkVersion::V3_8, true);
}

#[test]
fn matches_nltk_3_10_4() {
    check("3.10.4", NltkVersion::V3_10, true);
}
