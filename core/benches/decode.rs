//! Decode throughput (MB of tagged text per second) on the synthetic corpus.
//!
//! Run: `cargo bench -p lamar-core --bench decode`
//!
//! Three inputs, all 451 synthetic documents: the gold targets (a perfect model), and the
//! outputs of one simulated model (typos, trimmed whitespace, so the cascade runs). Each is
//! decoded three ways in the same run: lamar's default, the reference's cascade alone
//! (`verbatim: false`) and tag parsing alone (the floor: no alignment at all).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lamar_core::codec::{DecodeOptions, decode, encode, parse_tagged};
use lamar_core::synth::{NoiseRates, SynthConfig, generate, simulate};
use std::hint::black_box;

fn inputs() -> Vec<(&'static str, Vec<(String, String)>)> {
    let corpus = generate(&SynthConfig { docs: 451, seed: 7 });
    let gold: Vec<(String, String)> = corpus
        .documents
        .iter()
        .map(|d| (encode(&d.text, &d.gold).unwrap(), d.text.clone()))
        .collect();
    let model = simulate(&corpus, 0, &NoiseRates::default(), 7);
    let noisy: Vec<(String, String)> = model
        .outputs
        .iter()
        .zip(&corpus.documents)
        .map(|(o, d)| (o.predicted.clone(), d.text.clone()))
        .collect();
    vec![("gold", gold), ("simulated", noisy)]
}

fn bench_decode(c: &mut Criterion) {
    let reference = DecodeOptions {
        verbatim: false,
        ..DecodeOptions::default()
    };
    for (name, docs) in inputs() {
        let bytes: usize = docs.iter().map(|(t, _)| t.len()).sum();
        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(Throughput::Bytes(bytes as u64));
        group.sample_size(20);
        group.bench_function("lamar", |b| {
            b.iter(|| {
                for (tagged, raw) in &docs {
                    black_box(decode(tagged, raw, &DecodeOptions::default()));
                }
            })
        });
        group.bench_function("reference_cascade", |b| {
            b.iter(|| {
                for (tagged, raw) in &docs {
                    black_box(decode(tagged, raw, &reference));
                }
            })
        });
        group.bench_function("parse_only", |b| {
            b.iter(|| {
                for (tagged, _) in &docs {
                    black_box(parse_tagged(tagged));
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
