//! Spans and documents.
//!
//! Offsets are half-open `[start, end)` and count **Unicode code points**, exactly as Python
//! indexes a `str`. They are never byte offsets: use [`crate::text::CharIndex`] to slice a Rust
//! `&str` with them.

use crate::category::Category;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A labelled region of a document, `[start, end)` in code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    /// First code point of the span.
    pub start: usize,
    /// One past the last code point of the span.
    pub end: usize,
    /// The decision category.
    pub category: Category,
}

impl Span {
    /// A span; `start < end` is the caller's promise (see [`Span::checked`] for untrusted input).
    pub fn new(start: usize, end: usize, category: Category) -> Span {
        debug_assert!(start < end, "empty or reversed span {start}..{end}");
        Span {
            start,
            end,
            category,
        }
    }

    /// A span from untrusted offsets: `None` unless `0 <= start < end <= text_len`.
    pub fn checked(start: i64, end: i64, category: Category, text_len: usize) -> Option<Span> {
        let (s, e) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
        (s < e && e <= text_len).then(|| Span::new(s, e, category))
    }

    /// Length in code points.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Always false for a well-formed span; present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{} {}", self.start, self.end, self.category)
    }
}

/// A discharge summary: its MedDec id (`SUBJECT_HADM_ROW`) and its raw text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// The document id, e.g. `78_100536_1787`.
    pub id: String,
    /// The raw text, with newlines normalised as Python's text mode reads them.
    pub text: String,
}
