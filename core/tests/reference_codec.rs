//! Golden parity with LAMAR's own `gt_to_tag` and `pred_to_offset` (biodatlab/medexact-lamar),
//! run once on the golden synthetic corpus (`tests/golden/reference_codec`, made by
//! `core/tools/golden_reference_codec.py`): 80 gold documents, and 408 model outputs (three
//! simulated models, plus the gold targets with collapsed whitespace, random upper case, junk
//! and dropped tags, typos and rewritten spans).
//!
//! * `encode` + training rows must equal `gt_to_tag` byte for byte;
//! * `decode` with `DecodeOptions::reference()` must equal `pred_to_offset` span for span and
//!   drop for drop;
//! * lamar's default decoding may differ only where it is meant to (its fixes), and must place
//!   at least as many spans.

use lamar_core::codec::{DecodeOptions, decode};
use lamar_core::formats::gold::read_gold_file;
use lamar_core::formats::raw_text::read_raw_text_of;
use lamar_core::formats::rows::{TrainingRow, python_json_offsets};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn golden(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(rel)
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn raw_texts() -> BTreeMap<String, String> {
    let dir = golden("official/raw_text");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let id = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = read_raw_text_of(&dir, &id).unwrap();
            (id, text)
        })
        .collect()
}

#[test]
fn training_rows_equal_gt_to_tag() {
    let texts = raw_texts();
    let rows = jsonl(&golden("reference_codec/tagged.jsonl"));
    assert_eq!(rows.len(), 80);
    for want in rows {
        let id = want["file_id"].as_str().unwrap();
        let gold = read_gold_file(&golden(&format!("official/data/{id}.json")))
            .unwrap()
            .remove(0);
        let (row, _) = TrainingRow::from_gold(id, &texts[id], &gold);
        assert_eq!(row.gold_span, want["gold_span"].as_str().unwrap(), "{id}");
        assert_eq!(
            python_json_offsets(&row.gold_offsets),
            want["gold_offsets"].as_str().unwrap(),
            "{id}"
        );
    }
}

fn spans_of(v: &Value) -> Vec<(u64, u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start_offset"].as_u64().unwrap(),
                p["end_offset"].as_u64().unwrap(),
                p["category"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn reference_mode_equals_pred_to_offset() {
    let texts = raw_texts();
    let outputs = jsonl(&golden("reference_codec/model_outputs.jsonl"));
    let offsets = jsonl(&golden("reference_codec/offsets.jsonl"));
    let mut dropped_want = jsonl(&golden("reference_codec/dropped.jsonl")).into_iter();
    assert_eq!(outputs.len(), offsets.len());
    let (mut spans, mut drops, mut lamar_extra) = (0, 0, 0i64);
    for (out, want) in outputs.iter().zip(&offsets) {
        let id = out["file_id"].as_str().unwrap();
        let source = out["source"].as_str().unwrap();
        let predicted = out["predicted"].as_str().unwrap();
        let d = decode(predicted, &texts[id], &DecodeOptions::reference());
        let got: Vec<(u64, u64, u64)> = d
            .spans
            .iter()
            .map(|a| {
                (
                    a.span.start as u64,
                    a.span.end as u64,
                    u64::from(a.span.category.id()),
                )
            })
            .collect();
        assert_eq!(got, spans_of(&want["predictions"]), "{source} {id}");
        spans += got.len();
        for dropped in &d.dropped {
            let w = dropped_want
                .next()
                .unwrap_or_else(|| panic!("{source} {id}: unexpected drop {dropped:?}"));
            assert_eq!(
                (
                    w["source"].as_str().unwrap(),
                    w["file_id"].as_str().unwrap()
                ),
                (source, id)
            );
            assert_eq!(
                w["category"].as_u64().unwrap(),
                u64::from(dropped.category.id()),
                "{source} {id}"
            );
            assert_eq!(
                w["reason"].as_str().unwrap(),
                dropped.reason.as_str(),
                "{source} {id}"
            );
            let cut = |s: &str| s.chars().take(80).collect::<String>();
            assert_eq!(
                w["span_text"].as_str().unwrap(),
                cut(&dropped.text),
                "{source} {id}"
            );
            assert_eq!(
                w["closest"].as_str().unwrap(),
                cut(dropped.closest.as_deref().unwrap_or("")),
                "{source} {id}"
            );
            drops += 1;
        }
        // lamar's default decoding places at least as many spans.
        let lamar = decode(predicted, &texts[id], &DecodeOptions::default());
        lamar_extra += lamar.spans.len() as i64 - got.len() as i64;
        assert!(lamar.spans.len() >= got.len(), "{source} {id}");
    }
    assert!(
        dropped_want.next().is_none(),
        "the reference dropped more spans"
    );
    assert!(
        spans > 10_000 && drops > 200,
        "{spans} spans, {drops} drops"
    );
    assert!(lamar_extra >= 0);
}
