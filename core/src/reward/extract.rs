//! What LAMAR's rewards read from a completion (`utils/rewards.py`, lamar-spec.md §6.4): the
//! answer after any thinking block, the text without decision tags, and the cleaned strings of
//! every tag pair.
//!
//! Indices are bytes here, which is safe because every delimiter the reference looks for
//! (`<`, `>`, `/`) is ASCII: the substrings are the same as Python's code-point slices.

use crate::category::Category;
use crate::text::{collapse_whitespace, is_python_space};

/// `_get_text`: the answer part of a completion. The text after the last `</think>`, stripped;
/// nothing when the completion opens a thinking block it never closes; otherwise the completion
/// unchanged.
pub fn answer(completion: &str) -> &str {
    const CLOSE: &str = "</think>";
    if let Some(at) = completion.rfind(CLOSE) {
        return python_strip(&completion[at + CLOSE.len()..]);
    }
    if python_strip(completion).starts_with("<think>") {
        return "";
    }
    completion
}

/// `_strip_all_tags`: removes the opening and closing tags of the nine decision categories (and
/// no other tag-shaped text), then collapses whitespace as `" ".join(text.split())`.
pub fn strip_decision_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in tag_tokens(text) {
        match piece {
            Piece::Tag { name, .. } if Category::from_tag(name).is_some() => {}
            other => out.push_str(other.text()),
        }
    }
    collapse_whitespace(&out)
}

/// A piece of text as the reference's tag regular expressions cut it: a tag-shaped token
/// `</?[a-zA-Z_]+>`, or the text between two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text between tags.
    Text(&'a str),
    /// A tag token: the whole token and its name.
    Tag {
        /// `<name>` or `</name>`.
        token: &'a str,
        /// The name alone.
        name: &'a str,
    },
}

impl<'a> Piece<'a> {
    /// The piece as it is in the text.
    pub fn text(self) -> &'a str {
        match self {
            Piece::Text(text) => text,
            Piece::Tag { token, .. } => token,
        }
    }
}

/// The text cut into [`Piece`]s, left to right (a `<` that starts no token stays in the text).
pub fn tag_tokens(text: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = text;
    let mut pending: Option<Piece<'_>> = None;
    std::iter::from_fn(move || {
        if let Some(piece) = pending.take() {
            return Some(piece);
        }
        if rest.is_empty() {
            return None;
        }
        let mut from = 0;
        while let Some(at) = rest[from..].find('<').map(|k| from + k) {
            let after = &rest[at + 1..];
            let name_from = usize::from(after.starts_with('/'));
            let name_len = after[name_from..]
                .bytes()
                .take_while(|b| b.is_ascii_alphabetic() || *b == b'_')
                .count();
            let end = name_from + name_len;
            if name_len > 0 && after[end..].starts_with('>') {
                let token = &rest[at..at + 1 + end + 1];
                let name = &after[name_from..end];
                let before = &rest[..at];
                rest = &after[end + 1..];
                let tag = Piece::Tag { token, name };
                if before.is_empty() {
                    return Some(tag);
                }
                pending = Some(tag);
                return Some(Piece::Text(before));
            }
            from = at + 1;
        }
        let text = rest;
        rest = "";
        Some(Piece::Text(text))
    })
}

/// Python's `str.strip()` without arguments.
fn python_strip(text: &str) -> &str {
    text.trim_matches(is_python_space)
}

/// Removes every `</?[a-zA-Z_]+>` token (any tag-shaped text, decision tag or not).
fn remove_tag_tokens(text: &str) -> String {
    tag_tokens(text)
        .filter_map(|piece| match piece {
            Piece::Text(text) => Some(text),
            Piece::Tag { .. } => None,
        })
        .collect()
}

/// The characters the cleaning keeps at either end: ASCII letters and digits, and `*`.
fn kept_at_ends(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '*'
}

/// `_clean_extracted_text`: the comparable form of a span's inner text. Tag-shaped tokens are
/// removed and the text stripped; leading and trailing characters other than ASCII letters,
/// digits and `*` are dropped, except that a leading `[**` and a trailing `**]` (MIMIC's
/// de-identification brackets) are kept; then lower-cased.
pub fn clean_span_text(inner: &str) -> String {
    let without_tags = remove_tag_tokens(inner);
    let text = python_strip(&without_tags);
    if text.is_empty() {
        return String::new();
    }
    let prefix = if text.starts_with("[**") { "[**" } else { "" };
    let text = format!(
        "{prefix}{}",
        text[prefix.len()..].trim_start_matches(|c| !kept_at_ends(c))
    );
    let suffix = if text.ends_with("**]") { "**]" } else { "" };
    let body = text[..text.len() - suffix.len()].trim_end_matches(|c| !kept_at_ends(c));
    format!("{body}{suffix}").to_lowercase()
}

/// `_extract_clean_strings_with_tags`: `(category, cleaned text)` of every closed pair of
/// decision tags, in the order the pairs close. Each tag name has its own stack: a closing tag
/// pairs with the latest unpaired opening tag of the same name; unpaired tags are ignored, and
/// pairs whose cleaned text is empty are left out.
pub fn tagged_strings(text: &str) -> Vec<(Category, String)> {
    let mut open: [Vec<usize>; 9] = Default::default();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(lt) = text[i..].find('<').map(|k| i + k) {
        let Some(gt) = text[lt..].find('>').map(|k| lt + k) else {
            break;
        };
        let content = &text[lt + 1..gt];
        let (close, name) = match content.strip_prefix('/') {
            Some(name) => (true, name),
            None => (false, content),
        };
        match Category::from_tag(name) {
            Some(category) => {
                let stack = &mut open[usize::from(category.id() - 1)];
                if !close {
                    stack.push(gt + 1);
                } else if let Some(start) = stack.pop() {
                    let cleaned = clean_span_text(&text[start..lt]);
                    if !cleaned.is_empty() {
                        out.push((category, cleaned));
                    }
                }
                i = gt + 1;
            }
            // Not a decision tag: the reference moves on by one character.
            None => i = lt + 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_follows_the_last_thinking_block() {
        assert_eq!(answer("<think>a</think> x </think>\n y \n"), "y");
        assert_eq!(answer("  <think> never closed"), "");
        assert_eq!(answer(" plain "), " plain ");
    }

    #[test]
    fn pieces_cut_at_tag_tokens_only() {
        let pieces: Vec<Piece> = tag_tokens("<<b>x</c_d>< y>").collect();
        assert_eq!(
            pieces,
            [
                Piece::Text("<"),
                Piece::Tag {
                    token: "<b>",
                    name: "b"
                },
                Piece::Text("x"),
                Piece::Tag {
                    token: "</c_d>",
                    name: "c_d"
                },
                Piece::Text("< y>"),
            ]
        );
        assert_eq!(tag_tokens("").count(), 0);
    }

    #[test]
    fn only_decision_tags_are_stripped() {
        assert_eq!(
            strip_decision_tags("a <drug_decision>b</drug_decision>\n <b>c</b> <x"),
            "a b <b>c</b> <x"
        );
    }

    #[test]
    fn cleaning_keeps_deidentification_brackets() {
        assert_eq!(clean_span_text(" [**Name**] "), "[**name**]");
        // Only brackets at the very ends are protected.
        assert_eq!(clean_span_text(" ..[**Name**]!! "), "**name**");
        assert_eq!(clean_span_text("(<b>Start</b> Aspirin)."), "start aspirin");
        assert_eq!(clean_span_text(" ... "), "");
        assert_eq!(clean_span_text("[**]"), "[**");
    }

    #[test]
    fn pairs_close_per_tag_and_unpaired_tags_are_ignored() {
        let text = "<drug_decision>a <gather_info>b</drug_decision> c</gather_info> \
                    </drug_decision><define_problem>x";
        assert_eq!(
            tagged_strings(text),
            vec![
                (Category::Drug, "a b".to_string()),
                (Category::GatheringInformation, "b c".to_string()),
            ]
        );
    }
}
