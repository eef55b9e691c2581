//! Span-Cluster Consensus speed, against LAMAR's Python `mbr.py` in the same run.
//!
//! Run: `LAMAR_REFERENCE_MBR=DIR cargo bench -p lamar-core --bench ensemble`
//!
//! Input: three simulated models' predictions on the synthetic corpus (451 documents, about
//! 14,500 spans per model). DIR, when given, must hold a module `ref_mbr` with the reference's
//! `mbr(indexed_predictions, …)` (the reference is not part of this repository); it is timed on
//! the same input with the same Python that runs the tests, in-process, twice: consensus alone
//! (its span validation included, JSON loading excluded) and from the JSON text (`json.loads`
//! plus consensus). lamar validates while it parses, so its consensus time is on validated
//! spans; its from-JSON time is parse + validate + merge. One thread.

use criterion::{Criterion, criterion_group, criterion_main};
use lamar_core::ensemble::input::{VotesByDocument, add_model};
use lamar_core::ensemble::merge_all;
use lamar_core::ensemble::scc::SpanClusterConsensus;
use lamar_core::formats::predictions::predictions_to_string;
use lamar_core::synth::{NoiseRates, SynthConfig, generate, simulate};
use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};

fn bench(c: &mut Criterion) {
    let corpus = generate(&SynthConfig { docs: 451, seed: 7 });
    let files: Vec<String> = (0..3)
        .map(|k| {
            predictions_to_string(&simulate(&corpus, k, &NoiseRates::default(), 7).predictions)
        })
        .collect();
    let mut raw = VotesByDocument::new();
    for (k, f) in files.iter().enumerate() {
        add_model(&mut raw, k, f, "bench").unwrap();
    }
    let scc = SpanClusterConsensus {
        spans_only: true,
        ..SpanClusterConsensus::default()
    };
    let read_and_merge = || {
        let mut votes = VotesByDocument::new();
        for (k, f) in files.iter().enumerate() {
            add_model(&mut votes, k, f, "bench").unwrap();
        }
        merge_all(&votes, &scc)
    };
    // Best of 20 runs, as the reference's is best of three.
    let best_of = |f: &dyn Fn()| {
        (0..20)
            .map(|_| {
                let start = std::time::Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let lamar = best_of(&|| {
        black_box(merge_all(&raw, &scc));
    });
    let lamar_from_json = best_of(&|| {
        black_box(read_and_merge());
    });
    if let Ok(dir) = std::env::var("LAMAR_REFERENCE_MBR") {
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/reference_mbr_timing.py"
            ))
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(serde_json::to_string(&files).unwrap().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let times: Vec<f64> = text
            .split_whitespace()
            .map(|t| t.parse().unwrap_or(f64::NAN))
            .collect();
        let (merge, both) = (times[0], times[1]);
        println!(
            "consensus: reference mbr.py {merge:.3} s, lamar (one thread) {lamar:.4} s, ratio {:.0}x",
            merge / lamar
        );
        println!(
            "from JSON text: reference json.loads + mbr.py {both:.3} s, lamar parse + validate + merge {lamar_from_json:.4} s, ratio {:.0}x",
            both / lamar_from_json
        );
    }
    c.bench_function("scc_451_docs_3_models", |b| {
        b.iter(|| black_box(merge_all(&raw, &scc)))
    });
    c.bench_function("read_and_scc_451_docs_3_models", |b| {
        b.iter(|| black_box(read_and_merge()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
