//! Raw discharge-summary text files, `raw_text/<id>.txt`.
//!
//! Read as Python's `open(path).read()` reads them: UTF-8, universal newlines (`\r\n` and `\r`
//! become `\n`). Offsets into the result are code points.

use super::{FormatError, read_utf8, write_atomic};
use crate::text::universal_newlines;
use std::path::{Path, PathBuf};

/// Reads one raw text file as Python's text mode would.
pub fn read_raw_text(path: &Path) -> Result<String, FormatError> {
    let text = read_utf8(path)?;
    Ok(universal_newlines(&text).into_owned())
}

/// The path of document `id` in a raw text folder.
pub fn raw_text_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.txt"))
}

/// Reads document `id` from a raw text folder.
pub fn read_raw_text_of(dir: &Path, id: &str) -> Result<String, FormatError> {
    read_raw_text(&raw_text_path(dir, id))
}

/// Writes a raw text file byte for byte (Python writes `\n` unchanged on POSIX).
pub fn write_raw_text(path: &Path, text: &str) -> Result<(), FormatError> {
    write_atomic(path, text.as_bytes())
}
