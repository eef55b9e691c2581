//! Golden parity with LAMAR's Span-Cluster Consensus (`ensemble/mbr.py`), run once on random
//! prediction sets (`tests/golden/reference_ensemble`, made by
//! `core/tools/golden_reference_ensemble.py`): 16 parameter sets (defaults, all 0, all 1, random)
//! × 40 documents with one to four models, invalid entries, missing models and duplicates.
//! Output spans must be identical, and every model weight equal as an f64.

use lamar_core::Category;
use lamar_core::ensemble::input::validate_spans;
use lamar_core::ensemble::scc::{SccParams, SpanClusterConsensus, model_weights};
use lamar_core::ensemble::{Voter, Votes};
use lamar_core::span::Span;
use serde_json::Value;
use std::collections::BTreeMap;

fn votes(models: &Value) -> Votes {
    let map: BTreeMap<usize, Vec<Span>> = models
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), validate_spans(v)))
        .collect();
    Votes {
        models: map.into_iter().collect(),
    }
}

/// A Python int from JSON: booleans pass the reference's `isinstance(x, int)` and stay booleans
/// in its output.
fn int(v: &Value) -> usize {
    v.as_u64().or_else(|| v.as_bool().map(u64::from)).unwrap() as usize
}

#[test]
fn span_cluster_consensus_equals_mbr_py() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/golden/reference_ensemble/cases.json"
    );
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (mut docs, mut spans) = (0, 0);
    for case in &cases {
        let p: Vec<f64> = case["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let params = SccParams {
            min_cluster_iou: p[0],
            min_pairwise_iou: p[1],
            min_cluster_support: p[2],
            min_iou_same_cat: p[3],
        };
        let scc = SpanClusterConsensus {
            params,
            ..SpanClusterConsensus::default()
        };
        for doc in case["docs"].as_array().unwrap() {
            let name = doc["file_name"].as_str().unwrap();
            let v = votes(&doc["models"]);
            let got: Vec<(usize, usize, u8)> = scc
                .vote(&v)
                .spans
                .iter()
                .map(|s| (s.start, s.end, s.category.id()))
                .collect();
            let want: Vec<(usize, usize, u8)> = doc["expected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (int(&t[0]), int(&t[1]), int(&t[2]) as u8))
                .collect();
            assert_eq!(got, want, "params {p:?} {name}");
            for c in Category::ALL {
                let ours = model_weights(&v.of_category(c), params.min_pairwise_iou);
                let theirs = doc["weights"][c.id().to_string()].as_array().unwrap();
                assert_eq!(ours.len(), theirs.len(), "{name} category {c}");
                for (o, t) in ours.iter().zip(theirs) {
                    assert_eq!(o.model as u64, t[0].as_u64().unwrap());
                    assert_eq!(
                        o.weight.to_bits(),
                        t[1].as_f64().unwrap().to_bits(),
                        "{name} category {c}"
                    );
                }
            }
            docs += 1;
            spans += got.len();
        }
    }
    assert!(
        docs == 640 && spans > 3000,
        "{docs} documents, {spans} spans"
    );
}
