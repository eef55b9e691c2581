//! The tag codec: spans ⇄ tagged text.

use crate::{SpanTuple, error};
use lamar_core::codec::{self, DecodeOptions};
use lamar_core::{Category, Span};
use pyo3::prelude::*;

/// The spans of `text`, each checked: category 1 to 9 and `0 <= start < end <= len(text)`.
fn checked_spans(text: &str, spans: &[SpanTuple]) -> PyResult<Vec<Span>> {
    let len = text.chars().count();
    spans
        .iter()
        .enumerate()
        .map(|(k, &(start, end, category))| {
            let c = Category::from_id(category).ok_or_else(|| {
                error(format!(
                    "span {k}: category {category} is not one of 1 to 9"
                ))
            })?;
            Span::checked(start, end, c, len).ok_or_else(|| {
                error(format!(
                    "span {k}: ({start}, {end}) does not lie inside the text ({len} code points) \
                     with start < end"
                ))
            })
        })
        .collect()
}

/// Writes `spans` into `raw_text` as inline tags (the training target).
#[pyfunction]
pub fn encode(raw_text: &str, spans: Vec<SpanTuple>) -> PyResult<String> {
    let spans = checked_spans(raw_text, &spans)?;
    codec::encode(raw_text, &spans).map_err(error)
}

/// Reads a tagged output back into spans of `raw_text`; JSON text of
/// `{"spans": [{start_offset, end_offset, category, method}], "dropped": [{category, reason,
/// text, closest}]}`.
#[pyfunction]
#[pyo3(signature = (raw_text, tagged, reference = false))]
pub fn decode(py: Python<'_>, raw_text: &str, tagged: &str, reference: bool) -> PyResult<String> {
    let options = if reference {
        DecodeOptions::reference()
    } else {
        DecodeOptions::default()
    };
    py.detach(|| {
        let decoded = codec::decode(tagged, raw_text, &options);
        let spans: Vec<serde_json::Value> = decoded
            .spans
            .iter()
            .map(|a| {
                serde_json::json!({
                    "start_offset": a.span.start,
                    "end_offset": a.span.end,
                    "category": a.span.category.id(),
                    "method": a.method,
                })
            })
            .collect();
        let dropped: Vec<serde_json::Value> = decoded
            .dropped
            .iter()
            .map(|d| {
                serde_json::json!({
                    "category": d.category.id(),
                    "reason": d.reason,
                    "text": d.text,
                    "closest": d.closest,
                })
            })
            .collect();
        serde_json::to_string(&serde_json::json!({"spans": spans, "dropped": dropped}))
            .map_err(error)
    })
}
