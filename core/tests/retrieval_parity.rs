//! The greedy unique nearest-neighbour assignment against goldens written from the reference's
//! `retrieve.py` in Python (`tests/golden/retrieval`, made by
//! `core/tests/python/golden_retrieval.py`): integer vectors, so scores are exact and tie often.

use lamar_core::pseudo::retrieve::{Embeddings, greedy_unique, top_candidates};
use serde_json::Value;
use std::path::PathBuf;

fn matrix(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect()
}

#[test]
fn greedy_unique_assignment_matches_the_reference() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/retrieval/cases.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut cases = 0;
    for line in text.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let dim = case["dim"].as_u64().unwrap() as usize;
        let (queries, corpus) = (matrix(&case["queries"]), matrix(&case["corpus"]));
        let candidates = top_candidates(
            Embeddings::new(&queries, dim).unwrap(),
            Embeddings::new(&corpus, dim).unwrap(),
            case["candidates"].as_u64().unwrap() as usize,
        );
        let got = greedy_unique(&candidates, case["k"].as_u64().unwrap() as usize);
        let want: Vec<Vec<(usize, f32)>> = case["assigned"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| {
                q.as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        (
                            p[0].as_u64().unwrap() as usize,
                            p[1].as_f64().unwrap() as f32,
                        )
                    })
                    .collect()
            })
            .collect();
        let got: Vec<Vec<(usize, f32)>> = got
            .iter()
            .map(|q| q.iter().map(|n| (n.index, n.score)).collect())
            .collect();
        assert_eq!(got, want, "{line}");
        cases += 1;
    }
    assert_eq!(cases, 40);
}
