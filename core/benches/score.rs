//! Scorer speed: lamar against the Python reference path, in the same run.
//!
//! Run: `cargo bench -p lamar-core --bench score`
//!
//! Input: the synthetic corpus (451 documents, seed 7) and three simulated models' predictions.
//! * Python: `tests/python/meddec_score.py` (the published evaluator's formulas on NLTK 3.9.4,
//!   including its O(tokens × spans) token labelling), timed end to end for the three prediction
//!   sets, interpreter start-up subtracted. If `LAMAR_OFFICIAL_EVALUATE` names a copy of the
//!   official `evaluate.py`, it is timed too (three runs, one per prediction set).
//! * lamar, single-threaded: `Scorer::new` (tokenize and refine the gold) plus three `score`
//!   calls; also one `score` on a prepared scorer (the cost inside a tuning loop), and the
//!   end-to-end time at 1/4, 1/2 and all of the corpus (linearity).

use criterion::{Criterion, criterion_group, criterion_main};
use lamar_core::formats::gold::GoldAnnotation;
use lamar_core::formats::predictions::PredictedSpan;
use lamar_core::formats::stats::StatsRow;
use lamar_core::scorer::{Scorer, ScorerOptions};
use lamar_core::synth::{
    CorpusLayout, NoiseRates, SynthConfig, generate, simulate, write_corpus, write_simulated_model,
};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

type Gold = BTreeMap<String, Vec<GoldAnnotation>>;
type Preds = BTreeMap<String, Vec<PredictedSpan>>;

struct Data {
    texts: BTreeMap<String, String>,
    gold: Gold,
    preds: Vec<Preds>,
    stats: Vec<StatsRow>,
}

fn data(docs: usize) -> Data {
    let corpus = generate(&SynthConfig { docs, seed: 7 });
    let mut texts = BTreeMap::new();
    let mut gold = BTreeMap::new();
    for d in &corpus.documents {
        texts.insert(d.id.clone(), d.text.clone());
        gold.insert(d.id.clone(), d.gold_document().annotations);
    }
    let preds = (0..3)
        .map(|k| {
            simulate(&corpus, k, &NoiseRates::default(), 7)
                .predictions
                .into_iter()
                .map(|p| (p.file_name, p.predictions))
                .collect()
        })
        .collect();
    Data {
        texts,
        gold,
        preds,
        stats: corpus.documents.iter().map(|d| d.stats.clone()).collect(),
    }
}

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/nltk-oracle/3.9.4/bin/python")
}

fn time_python_harness(d: &Data) -> Option<f64> {
    let py = python();
    if !py.exists() {
        eprintln!(
            "(no {}: run `cargo test -p lamar-core --test nltk_parity` once to create it)",
            py.display()
        );
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/meddec_score.py");
    let punkt = concat!(env!("CARGO_MANIFEST_DIR"), "/data/punkt_tab/english");
    let evaluation = |preds: Option<&Preds>| {
        let gold: BTreeMap<&String, Vec<(i64, i64, String)>> = d
            .gold
            .iter()
            .map(|(id, anns)| {
                (
                    id,
                    anns.iter()
                        .map(|a| {
                            (
                                a.start.unwrap_or(0),
                                a.end.unwrap_or(0),
                                match &a.label {
                                    lamar_core::GoldLabel::Decision(c) => c.gold_label(),
                                    lamar_core::GoldLabel::OutOfScope(s) => s.clone(),
                                },
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        let preds: BTreeMap<&String, Vec<(i64, i64, i64)>> = preds
            .map(|p| {
                p.iter()
                    .map(|(id, ps)| {
                        (
                            id,
                            ps.iter()
                                .map(|s| (s.start_offset, s.end_offset, s.category))
                                .collect(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({"texts": d.texts, "gold": gold, "preds": preds, "stats": d.stats, "rule": "official"})
    };
    let run = |evaluations: Vec<serde_json::Value>| -> f64 {
        let request =
            serde_json::json!({"punkt_dir": punkt, "evaluations": evaluations}).to_string();
        let start = Instant::now();
        let mut child = Command::new(&py)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        start.elapsed().as_secs_f64()
    };
    let startup = run(vec![]);
    let full = run(d.preds.iter().map(|p| evaluation(Some(p))).collect());
    Some(full - startup)
}

fn time_official(dir: &std::path::Path) -> Option<f64> {
    let script = std::env::var("LAMAR_OFFICIAL_EVALUATE").ok()?;
    let nltk_data = std::env::var("NLTK_DATA").ok()?;
    let start = Instant::now();
    for k in 0..3 {
        let ok = Command::new(python())
            .arg(&script)
            .current_dir(dir)
            .env("NLTK_DATA", &nltk_data)
            .args([
                "--gold_dir",
                "data",
                "--raw_text_dir",
                "raw_text",
                "--stats_csv",
                "stats.csv",
                "--predictions",
                &format!("predictions/model_{k}.json"),
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    Some(start.elapsed().as_secs_f64())
}

fn score_all(d: &Data) {
    let scorer = Scorer::new(&d.gold, &d.texts, Some(&d.stats), ScorerOptions::default()).unwrap();
    for p in &d.preds {
        black_box(scorer.score(p).unwrap());
    }
}

fn bench(c: &mut Criterion) {
    let full = data(451);
    let start = Instant::now();
    score_all(&full);
    let lamar_once = start.elapsed().as_secs_f64();
    if let Some(py) = time_python_harness(&full) {
        println!(
            "python harness (NLTK 3.9.4), 451 docs x 3 prediction sets: {py:.3} s; lamar (first run, one thread): {lamar_once:.3} s; ratio {:.0}x",
            py / lamar_once
        );
    }
    let dir = tempfile_dir();
    let corpus = generate(&SynthConfig { docs: 451, seed: 7 });
    let layout = CorpusLayout::new(&dir);
    write_corpus(&corpus, &layout, |_| {}).unwrap();
    for k in 0..3 {
        write_simulated_model(&simulate(&corpus, k, &NoiseRates::default(), 7), &layout).unwrap();
    }
    if let Some(off) = time_official(&dir) {
        println!(
            "official evaluate.py (NLTK 3.9.4), 451 docs x 3 runs: {off:.3} s; ratio to lamar {:.0}x",
            off / lamar_once
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    let mut group = c.benchmark_group("score");
    group.sample_size(10);
    group.bench_function("end_to_end_451_docs_3_sets", |b| {
        b.iter(|| score_all(&full))
    });
    let scorer = Scorer::new(
        &full.gold,
        &full.texts,
        Some(&full.stats),
        ScorerOptions::default(),
    )
    .unwrap();
    group.bench_function("prepared_451_docs_1_set", |b| {
        b.iter(|| black_box(scorer.score(&full.preds[0]).unwrap()))
    });
    group.bench_function("word_tokenize_451_docs", |b| {
        b.iter(|| {
            for t in full.texts.values() {
                black_box(lamar_core::nltk::word_tokenize::token_spans(
                    t,
                    Default::default(),
                ));
            }
        })
    });
    group.bench_function("punkt_451_docs", |b| {
        b.iter(|| {
            for t in full.texts.values() {
                black_box(lamar_core::nltk::punkt::sentence_spans(
                    t,
                    lamar_core::nltk::punkt::PunktParameters::english(),
                    Default::default(),
                ));
            }
        })
    });
    for docs in [112, 225] {
        let d = data(docs);
        group.bench_function(format!("end_to_end_{docs}_docs_3_sets"), |b| {
            b.iter(|| score_all(&d))
        });
    }
    group.finish();
}

fn tempfile_dir() -> PathBuf {
    std::env::temp_dir().join(format!("lamar-score-bench-{}", std::process::id()))
}

criterion_group!(benches, bench);
criterion_main!(benches);
