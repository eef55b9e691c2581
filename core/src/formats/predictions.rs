//! The predictions JSON: the shared-task submission format and what every lamar step exchanges.
//!
//! ```json
//! [{"file_name": "78_100536_1787",
//!   "predictions": [{"start_offset": 10, "end_offset": 25, "category": 5}]}]
//! ```
//!
//! Written as the reference writes it (`indent=2`, non-ASCII kept), with one entry per document
//! even when it has no predictions. Offsets and categories are kept as the file states them;
//! consumers decide what is valid ([`PredictionFile::spans`] applies the usual checks).

use super::{FormatError, read_utf8, write_atomic};
use crate::category::Category;
use crate::span::Span;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One predicted span as the file states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictedSpan {
    /// Start offset (code points).
    pub start_offset: i64,
    /// End offset (code points).
    pub end_offset: i64,
    /// Category id; 1 to 9 are valid.
    pub category: i64,
    /// The span's text, when written with `--keep-decision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

impl From<Span> for PredictedSpan {
    fn from(span: Span) -> Self {
        PredictedSpan {
            start_offset: span.start as i64,
            end_offset: span.end as i64,
            category: i64::from(span.category.id()),
            decision: None,
        }
    }
}

/// One document's predictions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionFile {
    /// The document id.
    pub file_name: String,
    /// The predicted spans.
    pub predictions: Vec<PredictedSpan>,
}

impl PredictionFile {
    /// A document's entry from spans.
    pub fn from_spans(file_name: impl Into<String>, spans: &[Span]) -> PredictionFile {
        PredictionFile {
            file_name: file_name.into(),
            predictions: spans.iter().copied().map(PredictedSpan::from).collect(),
        }
    }

    /// The valid spans: category 1 to 9 and `0 <= start < end`, and `end <= text_len` when a text
    /// length is given. Returns them with the number of entries left out.
    pub fn spans(&self, text_len: Option<usize>) -> (Vec<Span>, usize) {
        let limit = text_len.unwrap_or(usize::MAX);
        let spans: Vec<Span> = self
            .predictions
            .iter()
            .filter_map(|p| {
                let category = Category::from_id(p.category)?;
                Span::checked(p.start_offset, p.end_offset, category, limit)
            })
            .collect();
        let left_out = self.predictions.len() - spans.len();
        (spans, left_out)
    }
}

/// A predicted span that does not lie inside its document's text: it starts before 0 or ends
/// past the text's end (the scorer and the voters drop such spans; reported so that a shifted or
/// truncated text does not pass unnoticed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideText {
    /// Index of the document's entry in the file (from 0).
    pub entry: usize,
    /// The entry's document id.
    pub file_name: String,
    /// Index of the span in the entry's `predictions` (from 0).
    pub prediction: usize,
    /// The span's start as written.
    pub start_offset: i64,
    /// The span's end as written.
    pub end_offset: i64,
    /// The text's length in code points, when it was known.
    pub text_len: Option<usize>,
}

impl std::fmt::Display for OutsideText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "entry {} ({:?}), prediction {}: [{}, {}) ",
            self.entry, self.file_name, self.prediction, self.start_offset, self.end_offset
        )?;
        match self.text_len {
            Some(len) => write!(f, "lies outside the text ({len} characters)"),
            None => write!(f, "has a negative offset"),
        }
    }
}

/// Every span of `files` that lies outside its document's text, in file order. `text_len` gives
/// a document's length in code points; where it gives none, only negative offsets are found.
pub fn spans_outside_text(
    files: &[PredictionFile],
    text_len: impl Fn(&str) -> Option<usize>,
) -> Vec<OutsideText> {
    let mut out = Vec::new();
    for (entry, file) in files.iter().enumerate() {
        let len = text_len(&file.file_name);
        let limit = len.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        for (prediction, p) in file.predictions.iter().enumerate() {
            let outside = p.start_offset < 0
                || p.end_offset < 0
                || p.start_offset > limit
                || p.end_offset > limit;
            if outside {
                out.push(OutsideText {
                    entry,
                    file_name: file.file_name.clone(),
                    prediction,
                    start_offset: p.start_offset,
                    end_offset: p.end_offset,
                    text_len: len,
                });
            }
        }
    }
    out
}

/// Parses a predictions JSON text; `source` names it in errors.
pub fn parse_predictions(text: &str, source: &str) -> Result<Vec<PredictionFile>, FormatError> {
    serde_json::from_str(text).map_err(|e| FormatError::json(source, &e))
}

/// Reads a predictions JSON file.
pub fn read_predictions(path: &Path) -> Result<Vec<PredictionFile>, FormatError> {
    parse_predictions(&read_utf8(path)?, &path.display().to_string())
}

/// The predictions JSON text, laid out as the reference writes it.
pub fn predictions_to_string(files: &[PredictionFile]) -> String {
    let mut text = serde_json::to_string_pretty(files).expect("predictions serialise");
    text.push('\n');
    text
}

/// Writes a predictions JSON file atomically.
pub fn write_predictions(path: &Path, files: &[PredictionFile]) -> Result<(), FormatError> {
    write_atomic(path, predictions_to_string(files).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let files = vec![
            PredictionFile::from_spans("a", &[Span::new(1, 4, Category::Drug)]),
            PredictionFile::from_spans("b", &[]),
        ];
        let text = predictions_to_string(&files);
        assert!(
            text.contains("\n  {\n    \"file_name\": \"a\",\n"),
            "{text}"
        );
        assert!(text.contains("\"predictions\": []"));
        assert_eq!(parse_predictions(&text, "p.json").unwrap(), files);
    }

    #[test]
    fn invalid_entries_are_counted_not_kept() {
        let text = r#"[{"file_name": "a", "predictions": [
            {"start_offset": 1, "end_offset": 4, "category": 5},
            {"start_offset": 4, "end_offset": 4, "category": 5},
            {"start_offset": 1, "end_offset": 4, "category": 10},
            {"start_offset": 1, "end_offset": 99, "category": 3}]}]"#;
        let files = parse_predictions(text, "p.json").unwrap();
        let (spans, left_out) = files[0].spans(Some(10));
        assert_eq!(spans, vec![Span::new(1, 4, Category::Drug)]);
        assert_eq!(left_out, 3);
    }

    #[test]
    fn spans_outside_their_text_are_found_with_their_place() {
        let text = r#"[{"file_name": "a", "predictions": [
            {"start_offset": 0, "end_offset": 10, "category": 5},
            {"start_offset": -1, "end_offset": 4, "category": 5},
            {"start_offset": 8, "end_offset": 11, "category": 3}]},
            {"file_name": "b", "predictions": [
            {"start_offset": 12, "end_offset": 14, "category": 1}]},
            {"file_name": "unknown", "predictions": [
            {"start_offset": 500, "end_offset": 600, "category": 1},
            {"start_offset": -5, "end_offset": 2, "category": 1}]}]"#;
        let files = parse_predictions(text, "p.json").unwrap();
        let lengths = |id: &str| match id {
            "a" => Some(10),
            "b" => Some(12),
            _ => None,
        };
        let found = spans_outside_text(&files, lengths);
        let places: Vec<(usize, usize)> = found.iter().map(|o| (o.entry, o.prediction)).collect();
        assert_eq!(places, [(0, 1), (0, 2), (1, 0), (2, 1)]);
        assert_eq!(
            found[1].to_string(),
            "entry 0 (\"a\"), prediction 2: [8, 11) lies outside the text (10 characters)"
        );
        assert_eq!(
            found[3].to_string(),
            "entry 2 (\"unknown\"), prediction 1: [-5, 2) has a negative offset"
        );
    }

    #[test]
    fn type_errors_name_line_and_column() {
        let text = "[{\"file_name\": \"a\",\n \"predictions\": [{\"start_offset\": \"x\"}]}]";
        let err = parse_predictions(text, "p.json").unwrap_err().to_string();
        assert!(err.starts_with("p.json:2:"), "{err}");
    }
}
