//! Tagged model output → tag-free text plus the spans the tags mark in it.
//!
//! The parser follows the reference `extract_spans_from_tags` (LAMAR's `utils/pred_to_offset.py`,
//! <https://github.com/biodatlab/medexact-lamar> at commit `2c0d9c5`):
//! * a tag is `<name>` or `</name>` where `name` is one or more ASCII letters or `_` (no spaces,
//!   digits, hyphens or attributes);
//! * a tag whose name is not one of the nine category tags (case-sensitive) is dropped;
//! * a `<` that does not start a tag is ordinary text (`<5`, `< 100`);
//! * a closing tag closes the **nearest** open tag of the same name anywhere on the stack, so
//!   crossing tags work; a closing tag with no such open tag is ignored;
//! * tags still open at the end mark nothing.
//!
//! It never fails: every input, however malformed, yields a (possibly empty) result, and what was
//! odd about it is counted in [`ParseDiagnostics`].

use crate::category::Category;

/// A span as the model marked it, in the coordinates of the tag-free text.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedSpan {
    /// Category of the tag pair.
    pub category: Category,
    /// Start in the tag-free text with unknown tags removed (the reference's plain text).
    pub start: usize,
    /// End in the same coordinates.
    pub end: usize,
    /// Start in the tag-free text with unknown tag-shaped tokens kept as text.
    pub verbatim_start: usize,
    /// End in the same coordinates.
    pub verbatim_end: usize,
    /// The marked text (from the reference's plain text).
    pub text: String,
}

impl TaggedSpan {
    /// The reference's position ratio: `start / max(len(plain), 1)`.
    pub fn position_ratio(&self, plain_len: usize) -> f64 {
        self.start as f64 / plain_len.max(1) as f64
    }
}

/// What was malformed in a model's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseDiagnostics {
    /// Opening tags never closed (category and position in the plain text).
    pub unclosed: Vec<(Category, usize)>,
    /// Closing tags with no open tag of their name.
    pub unmatched_closes: usize,
    /// Tag-shaped tokens whose name is not a category tag (`<br>`, `<think>`, `<Drug_Decision>`).
    pub unknown_tags: usize,
}

/// The result of parsing a tagged output.
#[derive(Debug, Clone, Default)]
pub struct ParsedOutput {
    /// Text with every tag-shaped token removed (the reference's `plain`).
    pub plain: String,
    /// Length of `plain` in code points.
    pub plain_len: usize,
    /// Text with only category tags removed: unknown tag-shaped tokens stay as text.
    pub verbatim: String,
    /// Spans in the order their closing tags appear.
    pub spans: Vec<TaggedSpan>,
    /// What was malformed.
    pub diagnostics: ParseDiagnostics,
}

/// A tag found at a `<`: whether it closes, its name, and its length in bytes.
pub(crate) struct TagToken<'a> {
    pub(crate) closing: bool,
    pub(crate) name: &'a str,
    pub(crate) byte_len: usize,
}

/// Matches `<(/?)([a-zA-Z_]+)>` at the start of `rest`.
pub(crate) fn match_tag(rest: &str) -> Option<TagToken<'_>> {
    let bytes = rest.as_bytes();
    if bytes.first() != Some(&b'<') {
        return None;
    }
    let closing = bytes.get(1) == Some(&b'/');
    let name_start = if closing { 2 } else { 1 };
    let name_len = bytes[name_start..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic() || **b == b'_')
        .count();
    let name_end = name_start + name_len;
    (name_len > 0 && bytes.get(name_end) == Some(&b'>')).then(|| TagToken {
        closing,
        name: &rest[name_start..name_end],
        byte_len: name_end + 1,
    })
}

/// Open tag on the stack: category, and where it opened in both text coordinates.
struct OpenTag {
    category: Category,
    plain_start: usize,
    plain_byte: usize,
    verbatim_start: usize,
}

/// Parses a model's tagged output. Never panics.
pub fn parse_tagged(tagged: &str) -> ParsedOutput {
    let mut out = ParsedOutput {
        plain: String::with_capacity(tagged.len()),
        verbatim: String::with_capacity(tagged.len()),
        ..ParsedOutput::default()
    };
    let mut plain_len = 0usize;
    let mut verbatim_len = 0usize;
    let mut stack: Vec<OpenTag> = Vec::new();
    let mut rest = tagged;
    while !rest.is_empty() {
        // Copy the run up to the next '<' in one go.
        let run = rest.find('<').unwrap_or(rest.len());
        if run > 0 {
            let chunk = &rest[..run];
            let n = chunk.chars().count();
            out.plain.push_str(chunk);
            out.verbatim.push_str(chunk);
            plain_len += n;
            verbatim_len += n;
            rest = &rest[run..];
            continue;
        }
        let Some(token) = match_tag(rest) else {
            out.plain.push('<');
            out.verbatim.push('<');
            plain_len += 1;
            verbatim_len += 1;
            rest = &rest[1..];
            continue;
        };
        let raw_token = &rest[..token.byte_len];
        rest = &rest[token.byte_len..];
        let Some(category) = Category::from_tag(token.name) else {
            out.diagnostics.unknown_tags += 1;
            out.verbatim.push_str(raw_token);
            verbatim_len += raw_token.len(); // ASCII only
            continue;
        };
        if !token.closing {
            stack.push(OpenTag {
                category,
                plain_start: plain_len,
                plain_byte: out.plain.len(),
                verbatim_start: verbatim_len,
            });
            continue;
        }
        match stack.iter().rposition(|t| t.category == category) {
            Some(at) => {
                let open = stack.remove(at);
                out.spans.push(TaggedSpan {
                    category,
                    start: open.plain_start,
                    end: plain_len,
                    verbatim_start: open.verbatim_start,
                    verbatim_end: verbatim_len,
                    text: out.plain[open.plain_byte..].to_string(),
                });
            }
            None => out.diagnostics.unmatched_closes += 1,
        }
    }
    out.diagnostics.unclosed = stack
        .into_iter()
        .map(|t| (t.category, t.plain_start))
        .collect();
    out.plain_len = plain_len;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;

    #[test]
    fn nested_and_crossing_tags() {
        let p = parse_tagged(
            "a<define_problem>b<evaluate_result>c</define_problem>d</evaluate_result>e",
        );
        assert_eq!(p.plain, "abcde");
        let got: Vec<_> = p
            .spans
            .iter()
            .map(|s| (s.category, s.start, s.end, s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (DefiningProblem, 1, 3, "bc"),
                (EvaluatingTestResult, 2, 4, "cd")
            ]
        );
    }

    #[test]
    fn close_matches_nearest_open_of_its_name() {
        let p = parse_tagged("<drug_decision>a<drug_decision>b</drug_decision>c</drug_decision>");
        let got: Vec<_> = p.spans.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(got, vec![(1, 2), (0, 3)]);
    }

    #[test]
    fn malformed_markup_is_tolerated_and_counted() {
        let p = parse_tagged(
            "x < 5 <br> <5 </drug_decision><define_problem>open <Drug_Decision>y<think>",
        );
        assert_eq!(p.plain, "x < 5  <5 open y");
        assert_eq!(p.verbatim, "x < 5 <br> <5 open <Drug_Decision>y<think>");
        assert!(p.spans.is_empty());
        assert_eq!(p.diagnostics.unmatched_closes, 1);
        assert_eq!(p.diagnostics.unknown_tags, 3);
        assert_eq!(p.diagnostics.unclosed, vec![(DefiningProblem, 10)]);
    }

    #[test]
    fn lone_angle_brackets_and_truncated_tags() {
        for input in [
            "<",
            "</",
            "<drug_decision",
            "</drug_decision",
            "<<>>",
            "<_>",
            "<a b>",
        ] {
            let p = parse_tagged(input);
            assert!(p.spans.is_empty(), "{input}");
        }
        assert_eq!(parse_tagged("<_>").plain, "");
        assert_eq!(parse_tagged("<a b>").plain, "<a b>");
    }

    #[test]
    fn positions_count_code_points() {
        let p = parse_tagged("\u{1f600}<drug_decision>\u{e9}t\u{e9}</drug_decision>");
        assert_eq!((p.spans[0].start, p.spans[0].end), (1, 4));
        assert_eq!(p.plain_len, 4);
    }
}
