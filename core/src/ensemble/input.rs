//! Reading several models' prediction files into per-document [`Votes`], with the reference's
//! rules (`ensemble/mbr.py`):
//! * model index = position of the file in the list;
//! * a model takes part in a document only if its file has an entry for it (an entry with no
//!   spans counts); a later entry for the same document replaces an earlier one;
//! * a span is kept only if it is an object with integer `start_offset`, `end_offset` and
//!   `category` (JSON booleans count as 0/1, as Python's `isinstance(x, int)` says; `3.0` does
//!   not), category 1 to 9, `start >= 0` and `end > start`. Nothing is checked against the text.
//!
//! The reference checks Python dictionaries after `json.load`; here the same rules run while
//! the JSON is parsed ([`ValidSpans`] is a lenient serde type), so no JSON tree is built and
//! every invalid item is skipped exactly where the reference skips it.

use super::Votes;
use crate::category::Category;
use crate::formats::{FormatError, read_utf8};
use crate::span::Span;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Implements the visitor methods for every JSON value a lenient type ignores: scalars give
/// `Default::default()`, lists and objects are drained.
macro_rules! ignore_other_values {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}

/// Drains a JSON list.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Drains a JSON object.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A value as Python's `isinstance(v, int)` sees it: `Some` for integers and booleans.
/// Integers beyond `i64` saturate (they cannot be offsets of any real text).
struct PythonInt(Option<i64>);

impl<'de> Deserialize<'de> for PythonInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PythonInt;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<PythonInt, E> {
                Ok(PythonInt(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<PythonInt, E> {
                Ok(PythonInt(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<PythonInt, E> {
                Ok(PythonInt(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<PythonInt, E> {
                Ok(PythonInt(None))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<PythonInt, E> {
                Ok(PythonInt(Some(i64::from(b))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PythonInt, E> {
                Ok(PythonInt(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PythonInt, E> {
                Ok(PythonInt(Some(i64::try_from(v).unwrap_or(i64::MAX))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<PythonInt, A::Error> {
                drain_seq(seq).map(|_| PythonInt(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PythonInt, A::Error> {
                drain_map(map).map(|_| PythonInt(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The keys of a span object that matter.
enum SpanKey {
    Start,
    End,
    Category,
    Other,
}

impl<'de> Deserialize<'de> for SpanKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SpanKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<SpanKey, E> {
                Ok(match k {
                    "start_offset" => SpanKey::Start,
                    "end_offset" => SpanKey::End,
                    "category" => SpanKey::Category,
                    _ => SpanKey::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// One item of a predictions list: `Some` if it is a valid span.
#[derive(Default)]
struct MaybeSpan(Option<Span>);

impl<'de> Deserialize<'de> for MaybeSpan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeSpan;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            ignore_other_values!();
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeSpan, A::Error> {
                drain_seq(seq).map(|_| MaybeSpan(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeSpan, A::Error> {
                // Absent or not an int: invalid. A repeated key: the last one counts, as in
                // Python's json.
                let (mut s, mut e, mut c) = (None, None, None);
                while let Some(key) = map.next_key::<SpanKey>()? {
                    match key {
                        SpanKey::Start => s = Some(map.next_value::<PythonInt>()?.0),
                        SpanKey::End => e = Some(map.next_value::<PythonInt>()?.0),
                        SpanKey::Category => c = Some(map.next_value::<PythonInt>()?.0),
                        SpanKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(MaybeSpan(valid_span(s.flatten(), e.flatten(), c.flatten())))
            }
        }
        d.deserialize_any(V)
    }
}

/// The reference's test of one span's integer fields.
fn valid_span(start: Option<i64>, end: Option<i64>, category: Option<i64>) -> Option<Span> {
    span_if_valid(start?, end?, category?)
}

/// The span of three integer fields the reference keeps: category 1 to 9, `start >= 0` and
/// `end > start` (for callers that read predictions from something other than JSON).
pub fn span_if_valid(start: i64, end: i64, category: i64) -> Option<Span> {
    let category = Category::from_id(category)?;
    (start >= 0 && end > start).then(|| Span::new(start as usize, end as usize, category))
}

/// A `predictions` value after the reference's validation (`validate_and_normalize_predictions`):
/// the valid spans in order; anything that is not a list gives no spans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidSpans(pub Vec<Span>);

impl<'de> Deserialize<'de> for ValidSpans {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValidSpans;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            ignore_other_values!();
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ValidSpans, A::Error> {
                let mut spans = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element::<MaybeSpan>()? {
                    spans.extend(item.0);
                }
                Ok(ValidSpans(spans))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ValidSpans, A::Error> {
                drain_map(map).map(|_| ValidSpans::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// The reference's span validation applied to an already parsed JSON value.
pub fn validate_spans(values: &Value) -> Vec<Span> {
    ValidSpans::deserialize(values).map_or_else(|_| Vec::new(), |v| v.0)
}

/// One entry of a predictions file: its document name (`None` skips the entry) and spans.
#[derive(Default)]
struct Entry {
    name: Option<String>,
    spans: Vec<Span>,
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            ignore_other_values!();
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Entry, A::Error> {
                drain_seq(seq).map(|_| Entry::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let mut entry = Entry::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "file_name" => {
                            entry.name = match map.next_value::<Value>()? {
                                Value::Null => None,
                                Value::String(s) => Some(s),
                                other => Some(other.to_string()),
                            }
                        }
                        "predictions" => entry.spans = map.next_value::<ValidSpans>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(entry)
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole predictions file: a list of entries.
struct Entries(Vec<Entry>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of {file_name, predictions}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(entry) = seq.next_element::<Entry>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Every document (by `file_name`) with the votes of the models that predicted on it.
pub type VotesByDocument = BTreeMap<String, Votes>;

/// Records `spans` as model `index`'s vote on one document, replacing an earlier entry of the
/// same model; models stay in ascending index order.
fn put(votes: &mut Votes, index: usize, spans: Vec<Span>) {
    match votes.models.binary_search_by_key(&index, |(m, _)| *m) {
        Ok(k) => votes.models[k].1 = spans,
        Err(k) => votes.models.insert(k, (index, spans)),
    }
}

/// Records already validated `spans` as model `index`'s vote on document `name` (what
/// [`add_model`] does for each entry of a file).
pub fn add_document(votes: &mut VotesByDocument, index: usize, name: String, spans: Vec<Span>) {
    put(votes.entry(name).or_default(), index, spans);
}

/// Adds one model's predictions (the JSON text of a predictions file) as model `index`.
/// `source` names the file in errors.
pub fn add_model(
    votes: &mut VotesByDocument,
    index: usize,
    json: &str,
    source: &str,
) -> Result<(), FormatError> {
    let entries: Entries = serde_json::from_str(json).map_err(|e| FormatError::json(source, &e))?;
    for entry in entries.0 {
        if let Some(name) = entry.name {
            put(votes.entry(name).or_default(), index, entry.spans);
        }
    }
    Ok(())
}

/// Reads prediction files (model `k` = `paths[k]`).
pub fn read_models(paths: &[impl AsRef<Path>]) -> Result<VotesByDocument, FormatError> {
    let mut votes = VotesByDocument::new();
    for (k, path) in paths.iter().enumerate() {
        let path = path.as_ref();
        add_model(
            &mut votes,
            k,
            &read_utf8(path)?,
            &path.display().to_string(),
        )?;
    }
    Ok(votes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_the_reference() {
        let items = r#"[
            {"start_offset": 1, "end_offset": 4, "category": 5},
            {"start_offset": true, "end_offset": 4, "category": 5, "extra": [1, {"a": 2}]},
            {"start_offset": 1.0, "end_offset": 4, "category": 5},
            {"start_offset": "1", "end_offset": 4, "category": 5},
            {"start_offset": 4, "end_offset": 4, "category": 5},
            {"start_offset": -1, "end_offset": 4, "category": 5},
            {"start_offset": 1, "end_offset": 4, "category": 10},
            {"start_offset": 1, "end_offset": 4},
            {"start_offset": 1, "end_offset": 4, "category": 5, "category": null},
            {"start_offset": 1, "end_offset": [4], "category": 5},
            {"start_offset": 1, "end_offset": 4, "category": null, "category": 2},
            [1, 4, 5], null, "x", 3
        ]"#;
        let want = vec![
            Span::new(1, 4, Category::Drug),
            Span::new(1, 4, Category::Drug),
            Span::new(1, 4, Category::GatheringInformation),
        ];
        let parsed: ValidSpans = serde_json::from_str(items).unwrap();
        assert_eq!(parsed.0, want);
        // The same rules on a parsed value.
        let value: Value = serde_json::from_str(items).unwrap();
        assert_eq!(validate_spans(&value), want);
        for not_a_list in ["null", "{\"a\": [1]}", "\"abc\"", "7"] {
            let v: ValidSpans = serde_json::from_str(not_a_list).unwrap();
            assert!(v.0.is_empty(), "{not_a_list}");
        }
    }

    #[test]
    fn presence_and_replacement() {
        let mut votes = VotesByDocument::new();
        add_model(
            &mut votes,
            0,
            r#"[{"file_name": "a", "predictions": []}, {"file_name": "b"}, 5, {"file_name": null}]"#,
            "m0",
        )
        .unwrap();
        add_model(
            &mut votes,
            1,
            r#"[{"file_name": "a", "predictions": [{"start_offset": 0, "end_offset": 2, "category": 3}]},
                {"file_name": "a", "predictions": []}, {"predictions": []}, {"file_name": 7}]"#,
            "m1",
        )
        .unwrap();
        assert_eq!(votes["a"].models, vec![(0, vec![]), (1, vec![])]);
        assert_eq!(votes["b"].models, vec![(0, vec![])]);
        assert_eq!(votes["7"].models, vec![(1, vec![])]);
        let err = add_model(&mut votes, 2, r#"{"x": 1}"#, "m2.json").unwrap_err();
        assert!(err.to_string().contains("m2.json"), "{err}");
        let err = add_model(&mut votes, 2, "[{\"file_name\": \"a\",\n ]", "m3.json").unwrap_err();
        assert!(err.to_string().contains("m3.json"), "{err}");
    }

    #[test]
    fn models_stay_in_index_order() {
        let mut votes = VotesByDocument::new();
        let one = r#"[{"file_name": "a", "predictions": []}]"#;
        for k in [2, 0, 1, 0] {
            add_model(&mut votes, k, one, "m").unwrap();
        }
        let order: Vec<usize> = votes["a"].models.iter().map(|(m, _)| *m).collect();
        assert_eq!(order, vec![0, 1, 2]);
    }
}
