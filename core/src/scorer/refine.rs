//! The evaluator's `refine_span`: expand a span to whole words, then drop leading and trailing
//! punctuation tokens (keeping MIMIC `[** … **]` brackets).

use crate::nltk::pyre::is_alnum;
use crate::nltk::{NltkVersion, treebank};
use crate::text::{CharIndex, is_blank, is_python_space};

/// Python's slice bounds `text[start:end]` for a text of `len` code points (negative indices
/// count from the end, out-of-range ones are clamped).
pub fn python_slice(len: usize, start: i64, end: i64) -> (usize, usize) {
    let clamp = |i: i64| -> usize {
        let n = len as i64;
        let j = if i < 0 { (i + n).max(0) } else { i.min(n) };
        j as usize
    };
    let (s, e) = (clamp(start), clamp(end));
    (s, e.max(s))
}

/// An error NLTK would raise inside `refine_span` (a token its own tokenizer cannot find again).
pub use crate::nltk::treebank::AlignError;

/// `refine_span(text, start, end)`, returning the refined **text** (`raw[s:e]` with Python
/// slicing), or `None` where the evaluator drops the span.
pub fn refine_span(
    text: &CharIndex<'_>,
    start: i64,
    end: i64,
    version: NltkVersion,
) -> Result<Option<String>, AlignError> {
    let n = text.len() as i64;
    if n == 0 {
        return Ok(None);
    }
    let alnum_at = |i: i64| text.char_at(i as usize).is_some_and(is_alnum);
    let (mut start, mut end) = (start, end);
    while start > 0 && start < n && alnum_at(start - 1) && alnum_at(start) {
        start -= 1;
    }
    while end > 0 && end < n && alnum_at(end - 1) && alnum_at(end) {
        end += 1;
    }
    let (s, e) = python_slice(text.len(), start, end);
    let span_text = text.slice(s, e);
    if is_blank(span_text) {
        return Ok(None);
    }
    if span_text.chars().all(|c| is_alnum(c) || is_python_space(c)) {
        // No Treebank rule touches letters, digits and whitespace except the contraction
        // splits, which never move the outer boundaries: every token is content, and the
        // refined span is the text between the first and last non-space characters.
        let lead = span_text
            .chars()
            .take_while(|&c| is_python_space(c))
            .count() as i64;
        let trail = span_text
            .chars()
            .rev()
            .take_while(|&c| is_python_space(c))
            .count() as i64;
        let len = span_text.chars().count() as i64;
        let (rs, re) = python_slice(text.len(), start + lead, start + len - trail);
        return Ok(Some(text.slice(rs, re).to_string()));
    }
    let spans = treebank::span_tokenize(span_text, version)?;
    let index = CharIndex::new(span_text);
    let words: Vec<&str> = spans.iter().map(|&(a, b)| index.slice(a, b)).collect();
    let is_content = |w: &str| w.chars().any(is_alnum) || w.contains("**");
    let mut i = 0;
    while i < words.len() {
        if is_content(words[i])
            || (words[i] == "[" && i + 1 < words.len() && words[i + 1].contains("**"))
        {
            break;
        }
        i += 1;
    }
    let mut j = words.len();
    while j > i {
        if is_content(words[j - 1])
            || (words[j - 1] == "]" && j >= 2 && words[j - 2].contains("**"))
        {
            break;
        }
        j -= 1;
    }
    if i >= j {
        return Ok(None);
    }
    let new_start = start + spans[i].0 as i64;
    let new_end = start + spans[j - 1].1 as i64;
    let (rs, re) = python_slice(text.len(), new_start, new_end);
    Ok(Some(text.slice(rs, re).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refine(text: &str, s: i64, e: i64) -> Option<String> {
        refine_span(&CharIndex::new(text), s, e, NltkVersion::V3_9).unwrap()
    }

    #[test]
    fn expands_to_words_and_strips_punctuation() {
        let text = "Pt was started on aspirin, then stopped.";
        assert_eq!(refine(text, 20, 25).as_deref(), Some("aspirin"));
        assert_eq!(refine(text, 17, 27).as_deref(), Some("aspirin"));
        assert_eq!(refine(text, 24, 26).as_deref(), Some("aspirin"));
        assert_eq!(refine(text, 25, 26), None);
        let text = "follow up at [**Hospital1 18**].";
        assert_eq!(refine(text, 13, 32).as_deref(), Some("[**Hospital1 18**]"));
    }

    #[test]
    fn python_slicing_of_odd_offsets() {
        assert_eq!(python_slice(10, -3, 20), (7, 10));
        assert_eq!(python_slice(10, 5, 2), (5, 5));
        // Python keeps the negative start: raw[-3:0] is empty, and the evaluator keeps "".
        assert_eq!(refine("abc def", -3, 7).as_deref(), Some(""));
        assert_eq!(refine("", 0, 3), None);
    }
}
