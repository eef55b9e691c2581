//! Differential test of the scorer against a Python harness that computes the MedDec metrics with
//! the real NLTK (`tests/python/meddec_score.py`, formulas of the published evaluator). Every
//! score must be equal as an f64, bit for bit.

mod common;

use common::{generated_texts, oracle, run_python};
use lamar_core::GoldLabel;
use lamar_core::formats::gold::GoldAnnotation;
use lamar_core::formats::predictions::PredictedSpan;
use lamar_core::formats::stats::StatsRow;
use lamar_core::nltk::NltkVersion;
use lamar_core::scorer::{Evaluation, Scorer, ScorerOptions, TokenF1Rule};
use lamar_core::synth::{SynthConfig, generate};
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const LABELS: &[&str] = &[
    "Category 1: Contact related",
    "Category 2",
    "Category 3: Defining problem",
    "Category 4",
    "Category 5: Drug",
    "Category 6",
    "Category 7: Evaluating test result",
    "Category 8",
    "Category 9",
    "Category 10: Legal",
    "Category 11",
    "TBD",
    " Category 3",
    "Category3",
    "Category 12",
];
const ETHNICITY: &[&str] = &[
    "W",
    "AA",
    "Hisp.",
    "Asian",
    "NH",
    "OTHER",
    "WHITE - RUSSIAN",
    "BLACK/HAITIAN",
    "UNKNOWN/NOT SPECIFIED",
];

struct Case {
    texts: BTreeMap<String, String>,
    gold: BTreeMap<String, Vec<(i64, i64, String)>>,
    preds: BTreeMap<String, Vec<(i64, i64, i64)>>,
    stats: Option<Vec<StatsRow>>,
    rule: TokenF1Rule,
}

fn random_span(rng: &mut ChaCha8Rng, len: i64) -> (i64, i64) {
    match rng.random_range(0..20) {
        0 => (rng.random_range(-5..3), rng.random_range(-3..8)),
        1 => (len - 2, len + 5),
        2 => {
            let s = rng.random_range(0..=len);
            (s, s)
        }
        3 => {
            let s = rng.random_range(0..=len);
            (s, (s - 3).max(0))
        }
        _ => {
            let s = rng.random_range(0..=len.max(1) - 1);
            (s, (s + rng.random_range(1..40)).min(len))
        }
    }
}

fn cases() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let mut pool = generated_texts(1200, 99);
    pool.extend(
        generate(&SynthConfig { docs: 60, seed: 3 })
            .documents
            .into_iter()
            .map(|d| d.text),
    );
    pool.push(String::new());
    let mut out = Vec::new();
    for c in 0..40 {
        let mut case = Case {
            texts: BTreeMap::new(),
            gold: BTreeMap::new(),
            preds: BTreeMap::new(),
            stats: (c % 4 != 3).then(Vec::new),
            rule: if c % 2 == 0 {
                TokenF1Rule::Official
            } else {
                TokenF1Rule::Lamar
            },
        };
        for d in 0..rng.random_range(5..40) {
            let id = match rng.random_range(0..12) {
                0 => format!("{d}_{}", rng.random_range(1..9)),
                1 => format!("{}_{}_{}-ann", 10 + d, 100 + d, 1000 + d),
                _ => format!("{}_{}_{}", 10 + d, 100 + d, 1000 + d),
            };
            let text = pool.choose(&mut rng).unwrap().clone();
            let len = text.chars().count() as i64;
            let in_gold = rng.random_bool(0.9);
            let in_pred = !in_gold || rng.random_bool(0.9);
            let mut gold = Vec::new();
            for _ in 0..rng.random_range(0..25) {
                let (s, e) = random_span(&mut rng, len);
                gold.push((s, e, LABELS.choose(&mut rng).unwrap().to_string()));
            }
            let mut preds = Vec::new();
            for (s, e, label) in &gold {
                if rng.random_bool(0.6) {
                    let cat = GoldLabel::parse(label)
                        .category()
                        .map_or(3, |c| i64::from(c.id()));
                    let cat = if rng.random_bool(0.15) {
                        rng.random_range(0..12)
                    } else {
                        cat
                    };
                    preds.push((
                        s + rng.random_range(-2..3),
                        e + rng.random_range(-2..3),
                        cat,
                    ));
                }
            }
            for _ in 0..rng.random_range(0..8) {
                let (s, e) = random_span(&mut rng, len);
                preds.push((s, e, rng.random_range(0..11)));
            }
            if in_gold {
                case.gold.insert(id.clone(), gold);
            }
            if in_pred {
                case.preds.insert(id.clone(), preds);
            }
            case.texts.insert(id.clone(), text);
            if let Some(stats) = case.stats.as_mut()
                && rng.random_bool(0.85)
            {
                let parts: Vec<&str> = id.split('_').collect();
                if parts.len() >= 3 {
                    stats.push(StatsRow {
                        subject_id: parts[0].into(),
                        hadm_id: parts[1].into(),
                        row_id: parts[2].split('-').next().unwrap().into(),
                        ethnicity: ETHNICITY.choose(&mut rng).unwrap().to_string(),
                        language: ["ENGL", "Non-ENGL", "", "english"]
                            .choose(&mut rng)
                            .unwrap()
                            .to_string(),
                        gender: ["F", "M", "U", "female"]
                            .choose(&mut rng)
                            .unwrap()
                            .to_string(),
                    });
                }
            }
        }
        if let Some(stats) = case.stats.as_mut() {
            stats.push(StatsRow {
                subject_id: "x".into(),
                hadm_id: "1".into(),
                row_id: "2".into(),
                ethnicity: "W".into(),
                language: "ENGL".into(),
                gender: "F".into(),
            });
        }
        out.push(case);
    }
    out
}

fn score_in_rust(case: &Case) -> Evaluation {
    let gold: BTreeMap<String, Vec<GoldAnnotation>> = case
        .gold
        .iter()
        .map(|(id, anns)| {
            let anns = anns
                .iter()
                .map(|(s, e, l)| GoldAnnotation {
                    start: Some(*s),
                    end: Some(*e),
                    label: GoldLabel::parse(l),
                    decision: None,
                    annotation_id: None,
                })
                .collect();
            (id.clone(), anns)
        })
        .collect();
    let preds: BTreeMap<String, Vec<PredictedSpan>> = case
        .preds
        .iter()
        .map(|(id, ps)| {
            let ps = ps
                .iter()
                .map(|&(s, e, c)| PredictedSpan {
                    start_offset: s,
                    end_offset: e,
                    category: c,
                    decision: None,
                })
                .collect();
            (id.clone(), ps)
        })
        .collect();
    let options = ScorerOptions {
        nltk: NltkVersion::V3_9,
        token_f1: case.rule,
    };
    let scorer = Scorer::new(&gold, &case.texts, case.stats.as_deref(), options).unwrap();
    scorer.score(&preds).unwrap()
}

fn bits(v: &Value) -> u64 {
    v.as_f64().unwrap().to_bits()
}

#[test]
fn scores_match_the_python_harness_bit_for_bit() {
    let cases = cases();
    let evaluations: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "texts": c.texts,
                "gold": c.gold,
                "preds": c.preds,
                "stats": c.stats,
                "rule": c.rule.to_string(),
            })
        })
        .collect();
    let request = json!({
        "punkt_dir": concat!(env!("CARGO_MANIFEST_DIR"), "/data/punkt_tab/english"),
        "evaluations": evaluations,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/meddec_score.py");
    let out = run_python(
        oracle("3.9.4"),
        script,
        request.to_string().as_bytes(),
        "the Python harness",
    );
    let expected: Vec<Value> = serde_json::from_slice(&out).unwrap();
    assert_eq!(expected.len(), cases.len(), "the harness scored every case");
    let mut with_groups = 0;
    let mut notes = 0;
    for (i, (case, want)) in cases.iter().zip(&expected).enumerate() {
        let got = score_in_rust(case);
        notes += case.texts.len();
        let span = &want["span"];
        assert_eq!(
            [
                got.span_f1.precision.to_bits(),
                got.span_f1.recall.to_bits(),
                got.span_f1.f1.to_bits()
            ],
            [bits(&span[0]), bits(&span[1]), bits(&span[2])],
            "case {i}: span scores {:?} vs {span}",
            got.span_f1
        );
        assert_eq!(
            got.token_f1.to_bits(),
            bits(&want["token_f1"]),
            "case {i}: token F1 {} vs {}",
            got.token_f1,
            want["token_f1"]
        );
        let by_file = want["by_file"].as_object().unwrap();
        assert_eq!(got.token_f1_by_file.len(), by_file.len(), "case {i}");
        for (f, v) in by_file {
            assert_eq!(
                got.token_f1_by_file[f].to_bits(),
                bits(v),
                "case {i} file {f}"
            );
        }
        match (&got.shared_task, want.get("shared_task")) {
            (None, None) => {}
            (Some(st), Some(w)) => {
                with_groups += 1;
                assert_eq!(
                    st.base_score.to_bits(),
                    bits(&w["base"]),
                    "case {i}: base {} = ({} + {}) / 2 vs {}",
                    st.base_score,
                    got.span_f1.f1,
                    got.token_f1,
                    w["base"]
                );
                assert_eq!(
                    st.worst_group_score.to_bits(),
                    bits(&w["worst"]),
                    "case {i}"
                );
                assert_eq!(st.final_score.to_bits(), bits(&w["final"]), "case {i}");
                for (dim, groups) in [
                    ("sex", &st.subgroups.sex),
                    ("race", &st.subgroups.race),
                    ("language", &st.subgroups.language),
                ] {
                    let want_groups = w["subgroups"][dim].as_object().unwrap();
                    let names: Vec<&String> = want_groups.keys().collect();
                    assert_eq!(groups.0.len(), names.len(), "case {i} {dim}");
                    for (name, g) in &groups.0 {
                        let wg = &want_groups[name];
                        assert_eq!(
                            g.n_files as u64,
                            wg[0].as_u64().unwrap(),
                            "case {i} {dim} {name}"
                        );
                        assert_eq!(
                            g.n_spans as u64,
                            wg[1].as_u64().unwrap(),
                            "case {i} {dim} {name}"
                        );
                        assert_eq!(
                            [
                                g.span_f1.to_bits(),
                                g.token_f1.to_bits(),
                                g.base_score.to_bits()
                            ],
                            [bits(&wg[2]), bits(&wg[3]), bits(&wg[4])],
                            "case {i} {dim} {name}"
                        );
                    }
                }
            }
            (a, b) => panic!("case {i}: shared task {a:?} vs {b:?}"),
        }
    }
    assert!(
        with_groups >= 20 && notes >= 800,
        "{with_groups} cases with groups, {notes} notes"
    );
}
