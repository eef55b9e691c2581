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
    fn type_errors_name_line_and_column() {
        let text = "[{\"file_name\": \"a\",\n \"predictions\": [{\"start_offset\": \"x\"}]}]";
        let err = parse_predictions(text, "p.json").unwrap_err().to_string();
        assert!(err.starts_with("p.json:2:"), "{err}");
    }
}
