//! Span-Cluster Consensus with the boundary-vote plugin deciding the clusters, against the
//! native consensus, in the same run; and the cost of one plugin call.
//!
//! Run: `cargo bench -p lamar-plugins --bench voter` (builds the example plugins for
//! wasm32-unknown-unknown first, as the tests do).

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use lamar_core::ensemble::input::{VotesByDocument, add_model};
use lamar_core::ensemble::merge_all;
use lamar_core::ensemble::scc::{SccParams, SpanClusterConsensus};
use lamar_core::formats::predictions::predictions_to_string;
use lamar_core::synth::{NoiseRates, SynthConfig, generate, simulate};
use lamar_plugins::{Limits, PluginHost};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let corpus = generate(&SynthConfig { docs: 451, seed: 7 });
    let mut votes = VotesByDocument::new();
    for k in 0..3 {
        let sim = simulate(&corpus, k, &NoiseRates::default(), 7);
        add_model(
            &mut votes,
            k,
            &predictions_to_string(&sim.predictions),
            "bench",
        )
        .unwrap();
    }
    let params = SccParams::default();
    let explained = SpanClusterConsensus {
        params,
        ..SpanClusterConsensus::default()
    };
    let spans_only = SpanClusterConsensus {
        spans_only: true,
        ..explained
    };
    let host = PluginHost::new(Limits::default()).unwrap();
    let plugin = host
        .load_voter(&common::plugin("lamar-plugin-boundary-vote"))
        .unwrap();
    assert_eq!(
        plugin.merge_all(&votes, &params, true).unwrap(),
        merge_all(&votes, &explained)
    );
    // Spans only, as `lamar ensemble` runs without --explain.
    let mut group = c.benchmark_group("spans_451_docs_3_models");
    group.bench_function("native", |b| {
        b.iter(|| black_box(merge_all(&votes, &spans_only)))
    });
    group.bench_function("boundary_vote_plugin", |b| {
        b.iter(|| black_box(plugin.merge_all(&votes, &params, false).unwrap()))
    });
    group.finish();
    // With the explanation (weights, clusters, decisions) of every document.
    let mut group = c.benchmark_group("explained_451_docs_3_models");
    group.bench_function("native", |b| {
        b.iter(|| black_box(merge_all(&votes, &explained)))
    });
    group.bench_function("boundary_vote_plugin", |b| {
        b.iter(|| black_box(plugin.merge_all(&votes, &params, true).unwrap()))
    });
    group.finish();

    // One document per call: the fixed cost of crossing into the plugin.
    let (name, doc) = votes.iter().next().unwrap();
    let one: VotesByDocument = [(name.clone(), doc.clone())].into_iter().collect();
    let mut group = c.benchmark_group("one_document_per_call");
    group.bench_function("native", |b| {
        b.iter(|| black_box(merge_all(&one, &spans_only)))
    });
    group.bench_function("boundary_vote_plugin", |b| {
        b.iter(|| black_box(plugin.merge_all(&one, &params, false).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
