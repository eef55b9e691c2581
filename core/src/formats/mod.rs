//! MedDec and LAMAR file formats, read and written as the reference tools do: MedDec's
//! `evaluate.py` (<https://github.com/CLU-UML/MedDec>, commit `f4374cd`) for the dataset's files,
//! LAMAR's scripts (<https://github.com/biodatlab/medexact-lamar>, commit `2c0d9c5`) for its own.
//!
//! | format | module | read as |
//! |---|---|---|
//! | gold annotations `data/<id>.json` (single object or list) | [`gold`] | MedDec `evaluate.py` `load_gold_annotations` |
//! | raw text `raw_text/<id>.txt` (universal newlines) | [`raw_text`] | MedDec `evaluate.py` `load_raw_text` |
//! | split files `splits/*.txt` (ids with or without `.json`) | [`split`] | MedDec `evaluate.py` `--split_file` |
//! | demographics `stats.csv` | [`stats`] | MedDec `evaluate.py` `load_stats_csv` |
//! | training rows (`gt_to_tag` output) and model outputs | [`rows`], [`training`] | LAMAR `utils/gt_to_tag.py`, `scripts/inference.py` |
//! | predictions JSON (submission format) | [`predictions`] | MedDec `evaluate.py` `load_predictions` |
//!
//! Every reader reports errors as [`FormatError`], which names the file and, where it can, the
//! line or JSON path at fault.

pub mod gold;
pub mod inference;
pub mod predictions;
pub mod raw_text;
pub mod rows;
pub mod split;
pub mod stats;
pub mod training;
pub mod windows;

use std::path::Path;

/// An error reading or writing one of the formats. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not valid UTF-8.
    #[error("{path}: not valid UTF-8 (first bad byte at offset {byte})")]
    Utf8 {
        /// The file.
        path: String,
        /// Byte offset of the first invalid byte.
        byte: usize,
    },
    /// The file is not valid JSON.
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Json {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The file is well-formed but a value is wrong.
    #[error("{path}: {location}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Where in the file: a line (`line 3`) or a JSON path (`[2].predictions[0].category`).
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The CSV layer failed.
    #[error("{path}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// What the CSV reader said, with its line.
        message: String,
    },
}

impl FormatError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> FormatError {
        FormatError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn json(path: &str, err: &serde_json::Error) -> FormatError {
        FormatError::Json {
            path: path.to_string(),
            line: err.line(),
            column: err.column(),
            message: strip_position(&err.to_string()),
        }
    }

    pub(crate) fn invalid(
        path: &str,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> FormatError {
        FormatError::Invalid {
            path: path.to_string(),
            location: location.into(),
            message: message.into(),
        }
    }

    pub(crate) fn csv(path: &str, err: &csv::Error) -> FormatError {
        let message = match err.position() {
            Some(pos) => format!("line {}: {}", pos.line(), err),
            None => err.to_string(),
        };
        FormatError::Csv {
            path: path.to_string(),
            message,
        }
    }
}

/// serde_json appends " at line L column C"; the error already carries those.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// Reads a whole file as UTF-8 text (no newline translation).
pub fn read_utf8(path: &Path) -> Result<String, FormatError> {
    let bytes = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| FormatError::Utf8 {
        path: path.display().to_string(),
        byte: e.utf8_error().valid_up_to(),
    })
}

/// Writes a file atomically: to a temporary sibling first, then renamed into place, so a failure
/// never leaves a half-written file behind.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), FormatError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| FormatError::io(dir, e))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, contents).map_err(|e| FormatError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        FormatError::io(path, e)
    })
}

/// Python's `int(x)` applied to a JSON value: integers as they are, floats truncated toward
/// zero, booleans as 0/1, strings parsed as Python parses them. `None` where Python raises.
pub fn python_int(value: &serde_json::Value) -> Option<i64> {
    use serde_json::Value;
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                .map(|f| f.trunc() as i64)
        }),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => python_int_str(s),
        _ => None,
    }
}

/// Python's `int(s)` for a string: surrounding whitespace, an optional sign, ASCII digits with
/// single underscores between them.
pub fn python_int_str(s: &str) -> Option<i64> {
    let t = s.trim_matches(crate::text::is_python_space);
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let value: i64 = digits.replace('_', "").parse().ok()?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_int_matches_python() {
        assert_eq!(python_int(&json!(12)), Some(12));
        assert_eq!(python_int(&json!(3.9)), Some(3));
        assert_eq!(python_int(&json!(-3.9)), Some(-3));
        assert_eq!(python_int(&json!(true)), Some(1));
        assert_eq!(python_int(&json!(" 42\n")), Some(42));
        assert_eq!(python_int(&json!("+1_000")), Some(1000));
        assert_eq!(python_int(&json!("1__0")), None);
        assert_eq!(python_int(&json!("4.0")), None);
        assert_eq!(python_int(&json!("")), None);
        assert_eq!(python_int(&json!(null)), None);
        assert_eq!(python_int(&json!([1])), None);
    }

    #[test]
    fn json_errors_name_file_line_and_column() {
        let err = serde_json::from_str::<serde_json::Value>("{\n  \"a\": ,\n}").unwrap_err();
        let e = FormatError::json("data/x.json", &err);
        let text = e.to_string();
        assert!(text.starts_with("data/x.json:2:8: invalid JSON"), "{text}");
    }
}
