//! The viewer's work natively, to compare with the same calls in the browser (BENCHMARKS.md):
//! the `Viewer` methods the page calls (JSON strings in and out), here compiled natively:
//! merging the synthetic corpus (451 documents, 3 simulated models) with Span-Cluster
//! Consensus, and scoring the merged result with the official scorer (gold prepared once).
//!
//! Run: `cargo bench -p lamar-wasm --bench session`. The browser side: `lamar synth --docs 451
//! --seed 7 --simulate-models 3`, `lamar view` on it, then `wasm/tests/browser/viewer_e2e.py`,
//! which prints the same two timings measured in Chromium.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use criterion::Criterion;
    use lamar_wasm::Viewer;
    use std::hint::black_box;

    // The very methods the page calls (JSON in, JSON out), compiled natively.
    let mut viewer = Viewer::synthetic(451, 7, 3).expect("synthetic session");
    let settings = r#"{"voter": "scc", "boundary": "joint", "params": {"min_cluster_iou": 0.1,
        "min_pairwise_iou": 0.1, "min_cluster_support": 0.34, "min_iou_same_cat": 0.8}}"#;
    viewer.evaluate(settings, false).expect("scores"); // prepares the gold once, as the page does
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("viewer_merge_451_docs", |b| {
        b.iter(|| black_box(viewer.merge(settings).unwrap()))
    });
    c.bench_function("viewer_evaluate_merged_451_docs", |b| {
        b.iter(|| black_box(viewer.evaluate(settings, false).unwrap()))
    });
    c.final_summary();
}

#[cfg(target_arch = "wasm32")]
fn main() {}
