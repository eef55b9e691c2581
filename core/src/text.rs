//! Python-compatible text helpers.
//!
//! The reference tools are Python, so offsets are code-point indices, whitespace is
//! `str.isspace()`, and files are read in text mode with universal newlines. These helpers give
//! Rust code the same view of a text.

use std::borrow::Cow;

/// Python's `str.isspace()` for one character.
///
/// Rust's [`char::is_whitespace`] (the Unicode `White_Space` property) misses the four
/// information separators U+001C to U+001F, which Python counts as whitespace.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.isalnum()` for one character (Rust's alphanumeric agrees with it on every code
/// point of Python 3.11's Unicode database).
pub fn is_python_alnum(c: char) -> bool {
    c.is_alphanumeric()
}

/// Applies Python's universal-newline translation (`\r\n` and lone `\r` become `\n`), as
/// `open(path).read()` does in text mode.
pub fn universal_newlines(text: &str) -> Cow<'_, str> {
    if !text.contains('\r') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Python's `" ".join(text.split())`: whitespace runs collapse to one space, ends trimmed.
pub fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(is_python_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Python's `str.split()` without a separator: runs of whitespace separate, no empty parts;
/// with `max_splits`, at most that many splits (the rest, leading whitespace removed, is the
/// last part), as `str.split(None, max_splits)`.
pub fn split_python_whitespace(text: &str, max_splits: Option<usize>) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text.trim_start_matches(is_python_space);
    while !rest.is_empty() {
        if max_splits == Some(parts.len()) {
            parts.push(rest.to_string());
            break;
        }
        match rest.find(is_python_space) {
            Some(end) => {
                parts.push(rest[..end].to_string());
                rest = rest[end..].trim_start_matches(is_python_space);
            }
            None => {
                parts.push(rest.to_string());
                rest = "";
            }
        }
    }
    parts
}

/// Python's `repr(float)`: the shortest text that reads back to `x`, in exponent form
/// (`1e-05`, `1.5e+20`) below 1e-4 and from 1e16 on, `nan`, `inf`, `-inf`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let abs = x.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Rust writes `1e20` and `1e-5`; Python `1e+20` and `1e-05`.
        let sci = format!("{x:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        return format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    // Rust's `{:?}` is the shortest round-trip form, with `.0` on whole numbers, like Python.
    format!("{x:?}")
}

/// True when `text.strip() == ""` in Python.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_python_space)
}

/// The first `n` code points of `text` (Python `text[:n]`).
pub fn prefix_chars(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((b, _)) => &text[..b],
        None => text,
    }
}

/// The last `n` code points of `text` (Python `text[-n:]` for `n > 0`).
pub fn suffix_chars(text: &str, n: usize) -> &str {
    let count = text.chars().count();
    if n >= count {
        return text;
    }
    match text.char_indices().nth(count - n) {
        Some((b, _)) => &text[b..],
        None => "",
    }
}

/// Maps code-point offsets of one text to byte offsets and back.
///
/// Build it once per document; every lookup is then O(1) (char → byte) or O(log n)
/// (byte → char).
#[derive(Debug, Clone)]
pub struct CharIndex<'a> {
    text: &'a str,
    /// `byte_of[i]` is the byte offset of code point `i`; the last entry is `text.len()`.
    byte_of: Vec<usize>,
}

impl<'a> CharIndex<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> CharIndex<'a> {
        let mut byte_of: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        byte_of.push(text.len());
        CharIndex { text, byte_of }
    }

    /// The indexed text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Length in code points (Python `len`).
    pub fn len(&self) -> usize {
        self.byte_of.len() - 1
    }

    /// True for the empty text.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Byte offset of code point `i` (`i <= len`).
    pub fn byte(&self, i: usize) -> usize {
        self.byte_of[i]
    }

    /// Code-point offset of a byte offset that lies on a char boundary.
    pub fn char_at_byte(&self, byte: usize) -> usize {
        self.byte_of.partition_point(|&b| b < byte)
    }

    /// Python `text[start:end]` for `start <= end <= len`.
    pub fn slice(&self, start: usize, end: usize) -> &'a str {
        &self.text[self.byte_of[start]..self.byte_of[end]]
    }

    /// Python `text[start:end]` with Python's clamping of out-of-range bounds.
    pub fn slice_clamped(&self, start: usize, end: usize) -> &'a str {
        let end = end.min(self.len());
        let start = start.min(end);
        self.slice(start, end)
    }

    /// Code point at index `i`.
    pub fn char_at(&self, i: usize) -> Option<char> {
        if i >= self.len() {
            return None;
        }
        self.text[self.byte_of[i]..].chars().next()
    }

    /// Code-point offsets of every occurrence of `needle`, overlapping ones included (Python's
    /// `find` loop restarting at `idx + 1`). An empty needle matches nowhere.
    pub fn find_all(&self, needle: &str) -> Vec<usize> {
        let mut found = Vec::new();
        if needle.is_empty() {
            return found;
        }
        let step = needle.chars().next().map_or(1, char::len_utf8);
        let mut from = 0;
        while let Some(pos) = self.text[from..].find(needle) {
            let byte = from + pos;
            found.push(self.char_at_byte(byte));
            from = byte + step;
        }
        found
    }
}

/// A text lower-cased code point by code point, with a map back to the original offsets.
///
/// Python's `str.lower()` can change the length of a text (`'İ'.lower()` is two code points), so
/// offsets found in a lower-cased text must be mapped back before they mean anything in the
/// original. (The reference tool skips that step; lamar does not.)
#[derive(Debug, Clone)]
pub struct LowerText {
    /// The lower-cased text.
    pub text: String,
    /// `origin[i]` is the original code point that produced lower-cased code point `i`; the last
    /// entry is the original length.
    pub origin: Vec<usize>,
}

impl LowerText {
    /// Lower-cases `text` keeping the offset map.
    pub fn new(text: &str) -> LowerText {
        let mut lowered = String::with_capacity(text.len());
        let mut origin = Vec::with_capacity(text.len() + 1);
        let mut n = 0;
        for (i, c) in text.chars().enumerate() {
            for l in c.to_lowercase() {
                lowered.push(l);
                origin.push(i);
            }
            n = i + 1;
        }
        origin.push(n);
        LowerText {
            text: lowered,
            origin,
        }
    }

    /// Maps a half-open range of the lower-cased text back to the original text.
    pub fn original_range(&self, start: usize, end: usize) -> (usize, usize) {
        let s = self.origin[start];
        // The end maps to one past the original code point of the last lowered code point.
        let e = if end == 0 {
            0
        } else {
            self.origin[end - 1] + 1
        };
        (s, e.max(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_information_separators() {
        for c in [
            '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}', '\u{3000}',
        ] {
            assert!(is_python_space(c), "{c:?}");
        }
        for c in ['\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}'] {
            assert!(is_python_space(c) && !c.is_whitespace(), "{c:?}");
        }
        for c in ['a', '\u{200b}', '\u{180e}', '_'] {
            assert!(!is_python_space(c), "{c:?}");
        }
    }

    #[test]
    fn universal_newlines_match_python_text_mode() {
        assert_eq!(universal_newlines("a\r\nb\rc\n\r\r\n"), "a\nb\nc\n\n\n");
        assert!(matches!(universal_newlines("plain\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn collapse_matches_split_join() {
        assert_eq!(collapse_whitespace("  a \t\n b\u{1f}c  "), "a b c");
        assert_eq!(collapse_whitespace(" \n "), "");
    }

    #[test]
    fn split_matches_python_str_split() {
        assert_eq!(
            split_python_whitespace("a\u{1f}b  c", None),
            ["a", "b", "c"]
        );
        assert_eq!(
            split_python_whitespace("  a  b\u{1d}c ", None),
            ["a", "b", "c"]
        );
        assert_eq!(split_python_whitespace(" a b c", Some(1)), ["a", "b c"]);
        assert_eq!(split_python_whitespace("a b ", Some(0)), ["a b "]);
        assert!(split_python_whitespace(" \n ", None).is_empty());
    }

    #[test]
    fn floats_are_written_as_python_repr_writes_them() {
        for (x, want) in [
            (0.25, "0.25"),
            (0.1, "0.1"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1e20, "1e+20"),
            (1.5e16, "1.5e+16"),
            (-2.5e-7, "-2.5e-07"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(python_float_repr(x), want);
        }
    }

    #[test]
    fn char_index_slices_by_code_point() {
        let idx = CharIndex::new("a\u{e9}\u{1f600}b");
        assert_eq!(idx.len(), 4);
        assert_eq!(idx.slice(1, 3), "\u{e9}\u{1f600}");
        assert_eq!(idx.char_at_byte(idx.byte(3)), 3);
        assert_eq!(idx.slice_clamped(2, 99), "\u{1f600}b");
        assert_eq!(idx.char_at(2), Some('\u{1f600}'));
    }

    #[test]
    fn find_all_reports_overlapping_occurrences_in_code_points() {
        let idx = CharIndex::new("\u{e9}aaa");
        assert_eq!(idx.find_all("aa"), vec![1, 2]);
        assert_eq!(idx.find_all(""), Vec::<usize>::new());
    }

    #[test]
    fn lower_text_maps_length_changing_characters_back() {
        // 'İ' lower-cases to 'i' + U+0307: two code points for one.
        let lower = LowerText::new("xİy");
        assert_eq!(lower.text.chars().count(), 4);
        let pos = lower.text.chars().position(|c| c == 'y').unwrap();
        assert_eq!(lower.original_range(pos, pos + 1), (2, 3));
        assert_eq!(lower.original_range(1, 3), (1, 2));
    }

    #[test]
    fn prefix_and_suffix_count_code_points() {
        assert_eq!(prefix_chars("\u{1f600}bc", 2), "\u{1f600}b");
        assert_eq!(suffix_chars("a\u{1f600}c", 2), "\u{1f600}c");
        assert_eq!(suffix_chars("ab", 5), "ab");
    }
}
