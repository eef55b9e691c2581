//! Span-Cluster Consensus speed, against LAMAR's Python `mbr.py` in the same run.
//!
//! Run: `LAMAR_REFERENCE_MBR=DIR cargo bench -p lamar-core --bench ensemble`
//!
//! Input: three simulated models' predictions on the synthetic corpus (451 documents, about
//! 14,500 spans per model). DIR, when given, must hold a module `ref_mbr` with the reference's
//! `mbr(indexed_predictions, …)` (the reference is not part of this repository); it is timed on
//! the same input with the same Python that runs the tests, in-process (JSON loading excluded).
//! lamar: one thread, validation included.

use criterion::{Criterion, criterion_group, criterion_main};
use lamar_core::ensemble::input::{RawVotes, add_model};
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
    let mut raw = RawVotes::new();
    for (k, f) in files.iter().enumerate() {
        add_model(&mut raw, k, &serde_json::from_str(f).unwrap(), "bench").unwrap();
    }
    let scc = SpanClusterConsensus {
        spans_only: true,
        ..SpanClusterConsensus::default()
    };
    let start = std::time::Instant::now();
    black_box(merge_all(&raw, &scc));
    let lamar = start.elapsed().as_secs_f64();
    if let Ok(dir) = std::env::var("LAMAR_REFERENCE_MBR") {
        let script = format!(
            "import json, sys, time\nsys.path.insert(0, {dir:?})\nimport ref_mbr\nfiles = json.load(sys.stdin)\n\
             docs = {{}}\nfor k, f in enumerate(files):\n    for item in json.loads(f):\n        docs.setdefault(item['file_name'], {{}})[k] = item['predictions']\n\
             t = time.perf_counter()\nfor name, preds in docs.items():\n    ref_mbr.mbr(preds)\nprint(time.perf_counter() - t)\n"
        );
        let mut child = Command::new("python3")
            .args(["-c", &script])
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
        let python: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(f64::NAN);
        println!(
            "reference mbr.py: {python:.3} s; lamar (first run, one thread): {lamar:.4} s; ratio {:.0}x",
            python / lamar
        );
    }
    c.bench_function("scc_451_docs_3_models", |b| {
        b.iter(|| black_box(merge_all(&raw, &scc)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
