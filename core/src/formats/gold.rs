//! MedDec gold annotation files.
//!
//! ```json
//! {"discharge_summary_id": "78_100536_1787",
//!  "annotations": [{"start_offset": 322, "end_offset": 332,
//!                   "category": "Category 3: Defining problem",
//!                   "decision": "...", "annotation_id": "..."}]}
//! ```
//!
//! A file holds one such object or a list of them. Offsets go through Python's `int()` (strings
//! such as `"322"` and floats are accepted as the reference accepts them); the category string is
//! parsed with the official `Category\s*(\d+)` rule and kept as a [`GoldLabel`]. The id has a
//! trailing `_` stripped, as the evaluator does.

use super::{FormatError, python_int, read_utf8, write_atomic};
use crate::category::GoldLabel;
use crate::span::Span;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// One gold annotation as the file states it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldAnnotation {
    /// `int(start_offset)`, or `None` where Python's `int()` would raise.
    pub start: Option<i64>,
    /// `int(end_offset)`, or `None` where Python's `int()` would raise.
    pub end: Option<i64>,
    /// The category label.
    pub label: GoldLabel,
    /// The annotated text, when the file gives it.
    pub decision: Option<String>,
    /// The annotation id, when the file gives it.
    pub annotation_id: Option<Value>,
}

/// Why a gold annotation does not become a [`Span`] (the reference `gt_to_tag` filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// An offset is missing or not an integer.
    BadOffset,
    /// Not `0 <= start < end <= len(text)`.
    OutOfRange,
    /// The label is not one of the nine categories.
    OutOfScope,
}

/// One document's gold annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldDocument {
    /// `discharge_summary_id` with trailing `_` stripped, when present.
    pub id: Option<String>,
    /// The annotations in file order.
    pub annotations: Vec<GoldAnnotation>,
}

impl GoldDocument {
    /// The in-scope spans that fit a text of `text_len` code points, in file order, and the
    /// reasons the other annotations were left out.
    pub fn spans(&self, text_len: usize) -> (Vec<Span>, Vec<SkipReason>) {
        let mut spans = Vec::with_capacity(self.annotations.len());
        let mut skipped = Vec::new();
        for a in &self.annotations {
            let (Some(start), Some(end)) = (a.start, a.end) else {
                skipped.push(SkipReason::BadOffset);
                continue;
            };
            let Some(category) = a.label.category() else {
                skipped.push(SkipReason::OutOfScope);
                continue;
            };
            match Span::checked(start, end, category, text_len) {
                Some(span) => spans.push(span),
                None => skipped.push(SkipReason::OutOfRange),
            }
        }
        (spans, skipped)
    }

    /// The MedDec single-object JSON for this document.
    pub fn to_json(&self) -> Value {
        let annotations: Vec<Value> = self
            .annotations
            .iter()
            .map(|a| {
                let mut obj = Map::new();
                obj.insert("start_offset".into(), json!(a.start));
                obj.insert("end_offset".into(), json!(a.end));
                let label = match &a.label {
                    GoldLabel::Decision(c) => c.gold_label(),
                    GoldLabel::OutOfScope(raw) => raw.clone(),
                };
                obj.insert("category".into(), Value::String(label));
                if let Some(d) = &a.decision {
                    obj.insert("decision".into(), Value::String(d.clone()));
                }
                if let Some(id) = &a.annotation_id {
                    obj.insert("annotation_id".into(), id.clone());
                }
                Value::Object(obj)
            })
            .collect();
        json!({ "discharge_summary_id": self.id, "annotations": annotations })
    }

    /// A gold annotation for `span` with its text from `text` (as MedDec writes `decision`).
    pub fn annotation_for(span: Span, decision: &str, id: &str) -> GoldAnnotation {
        GoldAnnotation {
            start: Some(span.start as i64),
            end: Some(span.end as i64),
            label: GoldLabel::Decision(span.category),
            decision: Some(decision.to_string()),
            annotation_id: Some(Value::String(id.to_string())),
        }
    }
}

/// Parses the text of a gold file (single object or list). `source` names it in errors.
pub fn parse_gold(text: &str, source: &str) -> Result<Vec<GoldDocument>, FormatError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FormatError::json(source, &e))?;
    match &value {
        Value::Object(_) => Ok(vec![parse_document(&value, source, "$")?]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_document(item, source, &format!("$[{i}]")))
            .collect(),
        _ => Err(FormatError::invalid(
            source,
            "$",
            "expected a gold object or a list of gold objects",
        )),
    }
}

fn parse_document(value: &Value, source: &str, at: &str) -> Result<GoldDocument, FormatError> {
    let obj = value
        .as_object()
        .ok_or_else(|| FormatError::invalid(source, at, "expected an object"))?;
    let id = match obj.get("discharge_summary_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim_end_matches('_').to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(FormatError::invalid(
                source,
                format!("{at}.discharge_summary_id"),
                "expected a string",
            ));
        }
    };
    let annotations = match obj.get("annotations") {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(FormatError::invalid(
                source,
                format!("{at}.annotations"),
                "expected a list",
            ));
        }
        None => {
            return Err(FormatError::invalid(
                source,
                at,
                "missing the \"annotations\" list",
            ));
        }
    };
    let annotations = annotations
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let here = format!("{at}.annotations[{i}]");
            let a = a
                .as_object()
                .ok_or_else(|| FormatError::invalid(source, &here, "expected an object"))?;
            let label = match a.get("category") {
                Some(Value::String(s)) => GoldLabel::parse(s),
                Some(other) => GoldLabel::OutOfScope(other.to_string()),
                None => GoldLabel::OutOfScope(String::new()),
            };
            Ok(GoldAnnotation {
                start: a.get("start_offset").and_then(python_int),
                end: a.get("end_offset").and_then(python_int),
                label,
                decision: a
                    .get("decision")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                annotation_id: a.get("annotation_id").cloned(),
            })
        })
        .collect::<Result<Vec<_>, FormatError>>()?;
    Ok(GoldDocument { id, annotations })
}

/// Reads one gold file.
pub fn read_gold_file(path: &Path) -> Result<Vec<GoldDocument>, FormatError> {
    parse_gold(&read_utf8(path)?, &path.display().to_string())
}

/// Reads `dir/<id>.json` for every `.json` file in `dir`, keyed by file stem. A list-form file
/// contributes each of its documents under its own id.
pub fn read_gold_dir(dir: &Path) -> Result<BTreeMap<String, GoldDocument>, FormatError> {
    let mut docs = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| FormatError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| FormatError::io(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = read_gold_file(&path)?;
        if parsed.len() == 1 {
            let doc = parsed.into_iter().next().expect("one document");
            docs.insert(stem, doc);
        } else {
            for doc in parsed {
                let id = doc.id.clone().ok_or_else(|| {
                    FormatError::invalid(
                        &path.display().to_string(),
                        "$",
                        "a list-form gold file needs discharge_summary_id on every document",
                    )
                })?;
                docs.insert(id, doc);
            }
        }
    }
    Ok(docs)
}

/// Writes one document as MedDec single-object gold JSON.
pub fn write_gold_file(path: &Path, doc: &GoldDocument) -> Result<(), FormatError> {
    let text = serde_json::to_string_pretty(&doc.to_json()).expect("JSON values serialise");
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;

    #[test]
    fn single_and_list_forms() {
        let single = r#"{"discharge_summary_id": "1_2_3_", "annotations": [
            {"start_offset": "2", "end_offset": 5.0, "category": "Category 5: Drug"},
            {"start_offset": 0, "end_offset": 3, "category": "TBD"},
            {"start_offset": null, "end_offset": 3, "category": "Category 3"},
            {"start_offset": 4, "end_offset": 40, "category": "Category 3"}]}"#;
        let docs = parse_gold(single, "g.json").unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].id.as_deref(), Some("1_2_3"));
        let (spans, skipped) = docs[0].spans(10);
        assert_eq!(spans, vec![Span::new(2, 5, Drug)]);
        assert_eq!(
            skipped,
            vec![
                SkipReason::OutOfScope,
                SkipReason::BadOffset,
                SkipReason::OutOfRange
            ]
        );
        assert_eq!(
            docs[0].annotations[1].label,
            GoldLabel::OutOfScope("TBD".into())
        );

        let list = format!("[{single}, {single}]");
        assert_eq!(parse_gold(&list, "g.json").unwrap().len(), 2);
    }

    #[test]
    fn errors_name_the_json_path() {
        let err = parse_gold(r#"{"annotations": [1]}"#, "data/a.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "data/a.json: $.annotations[0]: expected an object"
        );
        let err = parse_gold(r#"{"x": 1}"#, "data/a.json").unwrap_err();
        assert!(err.to_string().contains("annotations"));
        let err = parse_gold("{", "data/a.json").unwrap_err();
        assert!(err.to_string().starts_with("data/a.json:1:1"), "{err}");
    }

    #[test]
    fn written_json_reads_back() {
        let doc = GoldDocument {
            id: Some("1_2_3".into()),
            annotations: vec![GoldDocument::annotation_for(
                Span::new(0, 2, Deferment),
                "ab",
                "a1",
            )],
        };
        let back = parse_gold(&doc.to_json().to_string(), "x").unwrap();
        assert_eq!(back, vec![doc]);
    }
}
