//! Inference input and output files.
//!
//! * Input: documents to tag, JSONL or CSV (by extension) with `file_id` and `raw_text` (the
//!   reference's `test.csv` layout); other columns are ignored.
//! * Output: one record per document with `file_id`, `raw_text`, `predicted` (the generated
//!   tagged text) and `entropy` (mean negative log-likelihood of the generated tokens, the
//!   reference's name), plus `new_tokens` and `finished` (false when the token limit cut the
//!   generation short). JSONL, or CSV with the reference's columns (`file_id, raw_text,
//!   predicted, entropy`).
//!
//! Output is appended a record at a time and flushed, so an interrupted run loses at most the
//! documents in flight: [`InferenceOutput::open`] reads what an earlier run wrote, drops a last
//! record cut off mid-write, and reports the documents already done.

use super::rows::{csv_column_pair, is_csv, parse_jsonl};
use super::{FormatError, read_utf8};
use crate::text::python_float_repr;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One document to tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRow {
    /// Document id.
    pub file_id: String,
    /// The discharge summary.
    pub raw_text: String,
}

/// What the model made of one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceRecord {
    /// Document id.
    pub file_id: String,
    /// The discharge summary.
    pub raw_text: String,
    /// The generated text (special tokens removed).
    pub predicted: String,
    /// Mean negative log-likelihood of the generated tokens (0 when none).
    pub entropy: f64,
    /// Tokens generated (the stop token included).
    #[serde(default)]
    pub new_tokens: usize,
    /// True when generation ended with a stop token, false when the limit cut it.
    #[serde(default = "yes")]
    pub finished: bool,
}

fn yes() -> bool {
    true
}

/// Reads documents from JSONL or CSV; ids must be unique.
pub fn read_documents(path: &Path) -> Result<Vec<DocumentRow>, FormatError> {
    let text = read_utf8(path)?;
    let source = path.display().to_string();
    let rows: Vec<DocumentRow> = if is_csv(path) {
        csv_column_pair(&text, &source, "file_id", "raw_text")?
            .into_iter()
            .map(|(file_id, raw_text)| DocumentRow { file_id, raw_text })
            .collect()
    } else {
        parse_jsonl(&text, &source)?
    };
    let mut seen = BTreeSet::new();
    for (k, row) in rows.iter().enumerate() {
        if !seen.insert(row.file_id.as_str()) {
            return Err(FormatError::invalid(
                &source,
                format!("record {}", k + 1),
                format!("file_id {:?} appears twice", row.file_id),
            ));
        }
    }
    Ok(rows)
}

/// Reads `lamar infer`'s output (JSON Lines, or CSV by extension).
pub fn read_inference_records(path: &Path) -> Result<Vec<InferenceRecord>, FormatError> {
    let text = read_utf8(path)?;
    let source = path.display().to_string();
    if !is_csv(path) {
        return parse_jsonl(&text, &source);
    }
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<Vec<InferenceRecord>, csv::Error>>()
        .map_err(|e| FormatError::csv(&source, &e))
}

/// An output file open for appending.
pub struct InferenceOutput {
    file: std::fs::File,
    path: PathBuf,
    csv: bool,
    done: BTreeSet<String>,
    /// Bytes of a cut-off last record that were dropped when the file was opened.
    pub dropped_bytes: usize,
}

impl InferenceOutput {
    /// Opens `path` for appending, creating it if needed. Records already in it count as done;
    /// a last record without its final newline (a write cut short) is removed; any other
    /// damage is an error naming the record, and the file is left untouched.
    pub fn open(path: &Path) -> Result<InferenceOutput, FormatError> {
        let csv = is_csv(path);
        let source = path.display().to_string();
        let existing = if path.exists() {
            read_utf8(path)?
        } else {
            String::new()
        };
        // Only complete (newline-terminated) records count.
        let complete = existing.rfind('\n').map_or(0, |i| i + 1);
        let (mut done, mut keep) = (BTreeSet::new(), complete);
        if csv {
            if complete > 0 {
                let mut reader = csv::Reader::from_reader(&existing.as_bytes()[..complete]);
                let headers = reader
                    .headers()
                    .map_err(|e| FormatError::csv(&source, &e))?
                    .clone();
                let Some(id_col) = headers.iter().position(|h| h == "file_id") else {
                    return Err(FormatError::invalid(
                        &source,
                        "line 1",
                        "an existing output without a \"file_id\" column; choose another --out",
                    ));
                };
                let mut record = csv::StringRecord::new();
                let mut end = reader.position().byte() as usize;
                loop {
                    match reader.read_record(&mut record) {
                        Ok(true) => {
                            done.insert(record.get(id_col).unwrap_or_default().to_string());
                            end = reader.position().byte() as usize;
                        }
                        Ok(false) => break,
                        // A quoted field left open: the last write was cut inside it.
                        Err(_) => break,
                    }
                }
                keep = end;
            }
        } else {
            let records: Vec<InferenceRecord> = parse_jsonl(&existing[..complete], &source)?;
            done.extend(records.into_iter().map(|r| r.file_id));
        }
        let dropped_bytes = existing.len() - keep;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| FormatError::io(path, e))?;
        if dropped_bytes > 0 {
            file.set_len(keep as u64)
                .map_err(|e| FormatError::io(path, e))?;
        }
        let mut output = InferenceOutput {
            file,
            path: path.to_path_buf(),
            csv,
            done,
            dropped_bytes,
        };
        if csv && keep == 0 {
            output.write_bytes(b"file_id,raw_text,predicted,entropy\n")?;
        }
        Ok(output)
    }

    /// Ids of the documents the file already holds.
    pub fn done(&self) -> &BTreeSet<String> {
        &self.done
    }

    /// The documents of `documents` that are not done yet, in their order.
    pub fn pending(&self, documents: Vec<DocumentRow>) -> Vec<DocumentRow> {
        documents
            .into_iter()
            .filter(|d| !self.done.contains(&d.file_id))
            .collect()
    }

    /// Appends one record and flushes it to the file.
    pub fn append(&mut self, record: &InferenceRecord) -> Result<(), FormatError> {
        let line = if self.csv {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            writer
                .write_record([
                    record.file_id.as_str(),
                    record.raw_text.as_str(),
                    record.predicted.as_str(),
                    &python_float_repr(record.entropy),
                ])
                .map_err(|e| FormatError::csv(&self.path.display().to_string(), &e))?;
            writer
                .into_inner()
                .map_err(|e| FormatError::io(&self.path, e.into_error()))?
        } else {
            let mut line = serde_json::to_vec(record).expect("records serialise");
            line.push(b'\n');
            line
        };
        self.write_bytes(&line)?;
        self.done.insert(record.file_id.clone());
        Ok(())
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.flush())
            .map_err(|e| FormatError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> InferenceRecord {
        InferenceRecord {
            file_id: id.into(),
            raw_text: "Note,\n\"quoted\"".into(),
            predicted: "<drug_decision>Note</drug_decision>,\n\"quoted\"".into(),
            entropy: 0.25,
            new_tokens: 9,
            finished: true,
        }
    }

    #[test]
    fn reopening_resumes_and_drops_a_record_cut_mid_write() {
        for name in ["out.jsonl", "out.csv"] {
            let dir = tempfile_dir();
            let path = dir.join(name);
            let mut out = InferenceOutput::open(&path).unwrap();
            out.append(&record("a")).unwrap();
            out.append(&record("b")).unwrap();
            drop(out);
            let whole = std::fs::read(&path).unwrap();
            // A third record cut in the middle of a quoted field.
            let mut cut = whole.clone();
            let mut third = InferenceOutput::open(&dir.join(format!("x{name}"))).unwrap();
            third.append(&record("c")).unwrap();
            drop(third);
            let tail = std::fs::read(dir.join(format!("x{name}"))).unwrap();
            let tail = if name.ends_with("csv") {
                &tail[b"file_id,raw_text,predicted,entropy\n".len()..]
            } else {
                &tail[..]
            };
            cut.extend_from_slice(&tail[..tail.len() / 2]);
            std::fs::write(&path, &cut).unwrap();
            let out = InferenceOutput::open(&path).unwrap();
            assert_eq!(out.done().iter().collect::<Vec<_>>(), ["a", "b"], "{name}");
            assert!(out.dropped_bytes > 0);
            drop(out);
            assert_eq!(std::fs::read(&path).unwrap(), whole, "{name}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn csv_output_has_the_reference_columns_and_reads_back() {
        let dir = tempfile_dir();
        let path = dir.join("o.csv");
        let mut out = InferenceOutput::open(&path).unwrap();
        out.append(&record("a")).unwrap();
        drop(out);
        let rows = crate::formats::rows::read_model_outputs(&path).unwrap();
        assert_eq!(rows[0].predicted, record("a").predicted);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("file_id,raw_text,predicted,entropy\na,"));
        assert!(text.ends_with(",0.25\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn documents_need_unique_ids_and_both_columns() {
        let dir = tempfile_dir();
        let p = dir.join("d.jsonl");
        std::fs::write(
            &p,
            "{\"file_id\":\"a\",\"raw_text\":\"x\"}\n{\"file_id\":\"a\",\"raw_text\":\"y\"}\n",
        )
        .unwrap();
        let err = read_documents(&p).unwrap_err().to_string();
        assert!(
            err.contains("d.jsonl: record 2") && err.contains("twice"),
            "{err}"
        );
        let c = dir.join("d.csv");
        std::fs::write(&c, "file_id,text\na,x\n").unwrap();
        assert!(
            read_documents(&c)
                .unwrap_err()
                .to_string()
                .contains("\"raw_text\"")
        );
        std::fs::write(&c, "file_id,raw_text,other\na,\"x,\ny\",1\n").unwrap();
        assert_eq!(read_documents(&c).unwrap()[0].raw_text, "x,\ny");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lamar-inference-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
