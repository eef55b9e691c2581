//! Row formats: training rows (gold → tagged text) and model outputs (tagged text to decode).
//!
//! Both come as JSONL (one object per line) or CSV with a header, chosen by the file extension
//! (`.csv` is CSV, anything else JSONL).
//!
//! * Training rows have the columns of the reference `gt_to_tag` output: `file_id`, `raw_text`,
//!   `gold_span` (the tagged text) and `gold_offsets`. In JSONL `gold_offsets` is a list of
//!   objects; in CSV it is that list as the reference's `json.dumps` writes it
//!   (`[{"start_offset": 1, "end_offset": 4, "category": 5}]`).
//! * Model outputs need `file_id` and `predicted`; other columns (`raw_text`, `entropy`, ...)
//!   are ignored.

use super::gold::{GoldDocument, SkipReason};
use super::{FormatError, read_utf8, write_atomic};
use crate::codec::{encode, encoding_order};
use crate::span::Span;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One gold span in a training row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldOffset {
    /// Start offset (code points).
    pub start_offset: usize,
    /// End offset (code points).
    pub end_offset: usize,
    /// Category id, 1 to 9.
    pub category: u8,
}

impl From<Span> for GoldOffset {
    fn from(span: Span) -> Self {
        GoldOffset {
            start_offset: span.start,
            end_offset: span.end,
            category: span.category.id(),
        }
    }
}

impl GoldOffset {
    /// The span, if the category id is 1 to 9 and the offsets are ordered.
    pub fn span(&self) -> Option<Span> {
        let category = crate::category::Category::from_id(i64::from(self.category))?;
        (self.start_offset < self.end_offset)
            .then(|| Span::new(self.start_offset, self.end_offset, category))
    }
}

/// One training example: a document and its gold spans written as inline tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingRow {
    /// Document id.
    pub file_id: String,
    /// The raw text.
    pub raw_text: String,
    /// The raw text with gold tags: the model's target output.
    pub gold_span: String,
    /// The gold spans in encoding order.
    pub gold_offsets: Vec<GoldOffset>,
}

/// One model output to decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelOutputRow {
    /// Document id.
    pub file_id: String,
    /// The generated tagged text.
    pub predicted: String,
}

impl TrainingRow {
    /// The training row of one document: its in-scope gold spans that fit the text, in encoding
    /// order, written into the text as tags. Also returns why other annotations were left out.
    pub fn from_gold(
        file_id: &str,
        raw_text: &str,
        gold: &GoldDocument,
    ) -> (TrainingRow, Vec<SkipReason>) {
        let (spans, skipped) = gold.spans(raw_text.chars().count());
        let ordered = encoding_order(&spans);
        let gold_span =
            encode(raw_text, &ordered).expect("gold spans were checked against the text");
        let row = TrainingRow {
            file_id: file_id.to_string(),
            raw_text: raw_text.to_string(),
            gold_span,
            gold_offsets: ordered.into_iter().map(GoldOffset::from).collect(),
        };
        (row, skipped)
    }
}

/// `json.dumps(list_of_offsets)` with Python's default separators.
pub fn python_json_offsets(offsets: &[GoldOffset]) -> String {
    let items: Vec<String> = offsets
        .iter()
        .map(|o| {
            format!(
                "{{\"start_offset\": {}, \"end_offset\": {}, \"category\": {}}}",
                o.start_offset, o.end_offset, o.category
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// True when `path` names a CSV file.
pub fn is_csv(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Parses JSONL text into rows; blank lines are skipped, errors name the line.
pub fn parse_jsonl<T: serde::de::DeserializeOwned>(
    text: &str,
    source: &str,
) -> Result<Vec<T>, FormatError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                FormatError::invalid(
                    source,
                    format!("line {}", i + 1),
                    super::strip_position(&e.to_string()),
                )
            })
        })
        .collect()
}

/// JSONL text for rows.
pub fn to_jsonl<T: Serialize>(rows: &[T]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&serde_json::to_string(row).expect("rows serialise"));
        out.push('\n');
    }
    out
}

/// Reads model outputs from JSONL or CSV.
pub fn read_model_outputs(path: &Path) -> Result<Vec<ModelOutputRow>, FormatError> {
    let text = read_utf8(path)?;
    let source = path.display().to_string();
    if !is_csv(path) {
        return parse_jsonl(&text, &source);
    }
    Ok(csv_column_pair(&text, &source, "file_id", "predicted")?
        .into_iter()
        .map(|(file_id, predicted)| ModelOutputRow { file_id, predicted })
        .collect())
}

/// The values of two named columns of CSV text with a header, row by row; other columns are
/// ignored, a missing column is an error naming it.
pub(crate) fn csv_column_pair(
    text: &str,
    source: &str,
    first: &str,
    second: &str,
) -> Result<Vec<(String, String)>, FormatError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| FormatError::csv(source, &e))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            FormatError::invalid(source, "line 1", format!("missing the \"{name}\" column"))
        })
    };
    let (a, b) = (column(first)?, column(second)?);
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| FormatError::csv(source, &e))?;
            let value = |k: usize| record.get(k).unwrap_or_default().to_string();
            Ok((value(a), value(b)))
        })
        .collect()
}

/// Writes training rows as JSONL, or (`csv`) as CSV in the reference's column layout.
pub fn write_training_rows(
    path: &Path,
    rows: &[TrainingRow],
    csv: bool,
) -> Result<(), FormatError> {
    if !csv {
        return write_atomic(path, to_jsonl(rows).as_bytes());
    }
    let source = path.display().to_string();
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let csv_err = |e: csv::Error| FormatError::csv(&source, &e);
    writer
        .write_record(["file_id", "raw_text", "gold_span", "gold_offsets"])
        .map_err(csv_err)?;
    for row in rows {
        let offsets = python_json_offsets(&row.gold_offsets);
        writer
            .write_record([&row.file_id, &row.raw_text, &row.gold_span, &offsets])
            .map_err(csv_err)?;
    }
    let bytes = writer.into_inner().map_err(|e| FormatError::Csv {
        path: source.clone(),
        message: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// Reads training rows from JSONL, or from CSV in the reference's column layout.
pub fn read_training_rows(path: &Path) -> Result<Vec<TrainingRow>, FormatError> {
    let text = read_utf8(path)?;
    let source = path.display().to_string();
    if !is_csv(path) {
        return parse_jsonl(&text, &source);
    }
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| FormatError::csv(&source, &e))?;
        let field = |k: usize| record.get(k).unwrap_or_default().to_string();
        let gold_offsets = serde_json::from_str(&field(3)).map_err(|e| {
            FormatError::invalid(
                &source,
                format!("row {}", i + 1),
                format!("gold_offsets: {e}"),
            )
        })?;
        rows.push(TrainingRow {
            file_id: field(0),
            raw_text: field(1),
            gold_span: field(2),
            gold_offsets,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir()
            .join(format!("lamar-rows-{}", std::process::id()))
            .join(name)
    }

    #[test]
    fn offsets_are_written_like_json_dumps() {
        let o = [
            GoldOffset::from(Span::new(1, 4, Category::Drug)),
            GoldOffset::from(Span::new(2, 3, Category::DefiningProblem)),
        ];
        assert_eq!(
            python_json_offsets(&o),
            r#"[{"start_offset": 1, "end_offset": 4, "category": 5}, {"start_offset": 2, "end_offset": 3, "category": 3}]"#
        );
        assert_eq!(python_json_offsets(&[]), "[]");
    }

    #[test]
    fn training_rows_round_trip_in_both_formats() {
        let rows = vec![TrainingRow {
            file_id: "1_2_3".into(),
            raw_text: "a \"quoted\", multi\nline".into(),
            gold_span: "a <drug_decision>\"quoted\"</drug_decision>, multi\nline".into(),
            gold_offsets: vec![GoldOffset::from(Span::new(2, 10, Category::Drug))],
        }];
        for name in ["rows.jsonl", "rows.csv"] {
            let path = temp(name);
            write_training_rows(&path, &rows, is_csv(&path)).unwrap();
            assert_eq!(read_training_rows(&path).unwrap(), rows, "{name}");
        }
        let csv = std::fs::read_to_string(temp("rows.csv")).unwrap();
        assert!(
            csv.starts_with("file_id,raw_text,gold_span,gold_offsets\n1_2_3,\"a \"\"quoted\"\"")
        );
    }

    #[test]
    fn model_outputs_from_csv_need_their_columns() {
        let path = temp("out.csv");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            "file_id,raw_text,predicted,entropy\nA,x,\"<drug_decision>x</drug_decision>\",0.1\n",
        )
        .unwrap();
        let rows = read_model_outputs(&path).unwrap();
        assert_eq!(rows[0].file_id, "A");
        assert_eq!(rows[0].predicted, "<drug_decision>x</drug_decision>");
        std::fs::write(&path, "file_id,text\nA,x\n").unwrap();
        let err = read_model_outputs(&path).unwrap_err().to_string();
        assert!(err.contains("missing the \"predicted\" column"), "{err}");
        let jsonl = temp("out.jsonl");
        std::fs::write(
            &jsonl,
            "{\"file_id\": \"A\", \"predicted\": \"x\"}\n\n{\"file_id\": 3}\n",
        )
        .unwrap();
        let err = read_model_outputs(&jsonl).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
