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
    // The native consensus with the explanation, as the plugin path builds it.
    let native = SpanClusterConsensus {
        params,
        ..SpanClusterConsensus::default()
    };
    let host = PluginHost::new(Limits::default()).unwrap();
    let plugin = host
        .load_voter(&common::plugin("lamar-plugin-boundary-vote"))
        .unwrap();
    assert_eq!(
        plugin.merge_all(&votes, &params).unwrap(),
        merge_all(&votes, &native)
    );
    let mut group = c.benchmark_group("consensus_451_docs_3_models");
    group.bench_function("native", |b| {
        b.iter(|| black_box(merge_all(&votes, &native)))
    });
    group.bench_function("boundary_vote_plugin", |b| {
        b.iter(|| black_box(plugin.merge_all(&votes, &params).unwrap()))
    });
    group.finish();

    // One small document per call: the fixed cost of crossing into the plugin.
    let one: VotesByDocument = votes
        .iter()
        .find(|(_, v)| {
            lamar_core::ensemble::decide::cluster_count(
                &lamar_core::ensemble::decide::document_clusters(v, &params),
            ) == 3
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .into_iter()
        .collect();
    let mut group = c.benchmark_group("one_document_3_clusters");
    group.bench_function("native", |b| b.iter(|| black_box(merge_all(&one, &native))));
    group.bench_function("boundary_vote_plugin", |b| {
        b.iter(|| black_box(plugin.merge_all(&one, &params).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
