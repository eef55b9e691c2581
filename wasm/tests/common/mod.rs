//! What the native and the browser tests both compute: a digest of a viewer session on the
//! synthetic corpus (every system's official scores, merged span counts, one explanation).

use lamar_wasm::workbench::{MergeSettings, Workbench};
use serde_json::{Value, json};

/// The golden digest, computed natively (`LAMAR_BLESS=1 cargo test -p lamar-wasm` rewrites it).
pub const GOLDEN: &str = include_str!("../golden/synthetic_40_docs.json");

/// The digest of a session on 40 synthetic documents with 3 models.
pub fn digest() -> Value {
    let mut bench = Workbench::synthetic(40, 13, 3).expect("synthetic session");
    let mut out = Vec::new();
    for (voter, support) in [
        ("scc", 0.34),
        ("scc", 0.7),
        ("wbf", 0.34),
        ("majority", 0.34),
    ] {
        let mut settings = MergeSettings {
            voter: voter.into(),
            ..MergeSettings::default()
        };
        settings.params.min_cluster_support = support;
        let scores = bench.evaluate(&settings, true).expect("scores");
        let merged = bench.merge(&settings).expect("merge");
        let spans: usize = merged.values().map(|m| m.spans.len()).sum();
        let first = merged.values().next().map(|m| &m.explanation);
        out.push(json!({
            "voter": voter,
            "min_cluster_support": support,
            "merged_spans": spans,
            "first_explanation": first,
            "scores": scores.iter().map(|s| json!({
                "name": s.name,
                "span_f1": s.evaluation.span_f1,
                "token_f1": s.evaluation.token_f1,
                "final": s.evaluation.shared_task.as_ref().map(|t| t.final_score),
                "exact_f1_by_file": s.exact_f1_by_file,
            })).collect::<Vec<_>>(),
        }));
    }
    json!(out)
}
