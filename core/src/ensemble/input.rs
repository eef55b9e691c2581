//! Reading several models' prediction files into per-document [`Votes`], with the reference's
//! rules (`ensemble/mbr.py`):
//! * model index = position of the file in the list;
//! * a model takes part in a document only if its file has an entry for it (an entry with no
//!   spans counts); a later entry for the same document replaces an earlier one;
//! * a span is kept only if it is an object with integer `start_offset`, `end_offset` and
//!   `category` (JSON booleans count as 0/1, as Python's `isinstance(x, int)` says; `3.0` does
//!   not), category 1 to 9, `start >= 0` and `end > start`. Nothing is checked against the text.

use super::Votes;
use crate::category::Category;
use crate::formats::{FormatError, read_utf8};
use crate::span::Span;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Python's `isinstance(v, int)` for a JSON value, with its value.
fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) if n.is_i64() => n.as_i64(),
        Value::Number(n) if n.is_u64() => Some(i64::MAX),
        _ => None,
    }
}

/// The reference's span validation (`validate_and_normalize_predictions`).
pub fn validate_spans(values: &Value) -> Vec<Span> {
    let Some(items) = values.as_array() else {
        return Vec::new();
    };
    let mut spans = Vec::with_capacity(items.len());
    for item in items {
        let Some(o) = item.as_object() else { continue };
        // One pass over the entries instead of three keyed look-ups.
        let (mut s, mut e, mut c) = (None, None, None);
        for (k, v) in o {
            match k.as_str() {
                "start_offset" => s = Some(python_int(v)),
                "end_offset" => e = Some(python_int(v)),
                "category" => c = Some(python_int(v)),
                _ => {}
            }
        }
        let (Some(Some(s)), Some(Some(e)), Some(Some(c))) = (s, e, c) else {
            continue;
        };
        if let Some(category) = Category::from_id(c)
            && s >= 0
            && e > s
        {
            spans.push(Span::new(s as usize, e as usize, category));
        }
    }
    spans
}

/// Documents (by `file_name`) and each present model's raw span list.
pub type RawVotes = BTreeMap<String, BTreeMap<usize, Value>>;

/// Adds one model's predictions JSON (already parsed) as model `index`.
pub fn add_model(
    raw: &mut RawVotes,
    index: usize,
    data: &Value,
    source: &str,
) -> Result<(), FormatError> {
    let items = data.as_array().ok_or_else(|| {
        FormatError::invalid(source, "$", "expected a list of {file_name, predictions}")
    })?;
    for item in items {
        let name = match item.get("file_name") {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let preds = item
            .get("predictions")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        raw.entry(name).or_default().insert(index, preds);
    }
    Ok(())
}

/// Reads prediction files (model `k` = `paths[k]`) into raw votes.
pub fn read_models(paths: &[impl AsRef<Path>]) -> Result<RawVotes, FormatError> {
    let mut raw = RawVotes::new();
    for (k, path) in paths.iter().enumerate() {
        let path = path.as_ref();
        let source = path.display().to_string();
        let data: Value =
            serde_json::from_str(&read_utf8(path)?).map_err(|e| FormatError::json(&source, &e))?;
        add_model(&mut raw, k, &data, &source)?;
    }
    Ok(raw)
}

/// Validated votes of one document.
pub fn votes_of(models: &BTreeMap<usize, Value>) -> Votes {
    Votes {
        models: models
            .iter()
            .map(|(m, v)| (*m, validate_spans(v)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_follows_the_reference() {
        let spans = validate_spans(&json!([
            {"start_offset": 1, "end_offset": 4, "category": 5},
            {"start_offset": true, "end_offset": 4, "category": 5},
            {"start_offset": 1.0, "end_offset": 4, "category": 5},
            {"start_offset": "1", "end_offset": 4, "category": 5},
            {"start_offset": 4, "end_offset": 4, "category": 5},
            {"start_offset": -1, "end_offset": 4, "category": 5},
            {"start_offset": 1, "end_offset": 4, "category": 10},
            {"start_offset": 1, "end_offset": 4},
            [1, 4, 5],
        ]));
        assert_eq!(
            spans,
            vec![
                Span::new(1, 4, Category::Drug),
                Span::new(1, 4, Category::Drug)
            ]
        );
        assert!(validate_spans(&json!(null)).is_empty());
    }

    #[test]
    fn presence_and_replacement() {
        let mut raw = RawVotes::new();
        add_model(
            &mut raw,
            0,
            &json!([{"file_name": "a", "predictions": []}, {"file_name": "b"}]),
            "m0",
        )
        .unwrap();
        add_model(&mut raw, 1, &json!([{"file_name": "a", "predictions": [{"start_offset": 0, "end_offset": 2, "category": 3}]},
                                      {"file_name": "a", "predictions": []}, {"predictions": []}]), "m1").unwrap();
        assert_eq!(raw["a"].keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(votes_of(&raw["a"]).models, vec![(0, vec![]), (1, vec![])]);
        assert_eq!(raw["b"].keys().copied().collect::<Vec<_>>(), vec![0]);
        assert!(add_model(&mut raw, 2, &json!({"x": 1}), "m2").is_err());
    }
}
