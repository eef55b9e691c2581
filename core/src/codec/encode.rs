//! Gold spans → tagged text, the training target of the generative tagger.
//!
//! Reproduces the reference `gt_to_tag` conventions exactly (LAMAR's `utils/gt_to_tag.py`,
//! <https://github.com/biodatlab/medexact-lamar> at commit `2c0d9c5`; goldens it computed in
//! `tests/golden/reference_codec`):
//! * spans are ordered by start ascending, end descending, then nest rank descending (so among
//!   identical spans the rarer category is outermost), keeping input order on full ties;
//! * at one position every closing tag is written before any opening tag;
//! * among closes at one position, the span that started later closes first, and among spans
//!   with the same start the inner one (later in the order above) closes first;
//! * among opens at one position, longer spans open first;
//! * crossing spans produce non-well-formed markup (`<a>x<b>y</a>z</b>`), duplicates nest;
//! * the text is copied verbatim: no escaping of `<`, `>` or `&`, no whitespace changes.
//!
//! Two crossing spans of the same category cannot be told apart from a nested pair once written
//! as tags; see [`super::canonical`].

use crate::span::Span;
use crate::text::CharIndex;

/// A span that does not fit the text it is encoded into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("span {span} does not lie inside the text ({text_len} code points)")]
pub struct SpanOutOfText {
    /// The offending span.
    pub span: Span,
    /// Length of the text in code points.
    pub text_len: usize,
}

/// The spans in the reference's encoding order: start ascending, end descending, nest rank
/// descending; full ties keep the input order (Python's sort is stable). Training rows list
/// their `gold_offsets` in this order.
pub fn encoding_order(spans: &[Span]) -> Vec<Span> {
    let mut ordered: Vec<Span> = spans.to_vec();
    ordered.sort_by(|x, y| {
        x.start
            .cmp(&y.start)
            .then(y.end.cmp(&x.end))
            .then(y.category.nest_rank().cmp(&x.category.nest_rank()))
    });
    ordered
}

/// Writes `spans` into `text` as inline tags.
///
/// Every span must satisfy `start < end <= len(text)`; filter untrusted gold first (see
/// [`crate::formats::gold::GoldDocument::spans`]).
pub fn encode(text: &str, spans: &[Span]) -> Result<String, SpanOutOfText> {
    let index = CharIndex::new(text);
    for &span in spans {
        if span.start >= span.end || span.end > index.len() {
            return Err(SpanOutOfText {
                span,
                text_len: index.len(),
            });
        }
    }
    let ordered = encoding_order(spans);

    // (position, kind, secondary, order): closes (kind 0) sort before opens (kind 1).
    let mut events: Vec<(usize, u8, i64, i64, usize)> = Vec::with_capacity(ordered.len() * 2);
    for (i, span) in ordered.iter().enumerate() {
        let i = i as i64;
        events.push((span.start, 1, -(span.end as i64), i, i as usize));
        events.push((span.end, 0, -(span.start as i64), -i, i as usize));
    }
    events.sort_unstable_by_key(|&(pos, kind, secondary, order, _)| (pos, kind, secondary, order));

    let tag_bytes: usize = ordered.iter().map(|s| 2 * s.category.tag().len() + 5).sum();
    let mut out = String::with_capacity(text.len() + tag_bytes);
    let mut prev = 0;
    for (pos, kind, _, _, which) in events {
        out.push_str(index.slice(prev, pos));
        let tag = ordered[which].category.tag();
        out.push('<');
        if kind == 0 {
            out.push('/');
        }
        out.push_str(tag);
        out.push('>');
        prev = pos;
    }
    out.push_str(index.slice(prev, index.len()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;

    fn s(start: usize, end: usize, c: crate::Category) -> Span {
        Span::new(start, end, c)
    }

    const TEXT: &str = "0123456789abcdef";

    /// The conventions of LAMAR's `gt_to_tag` on small cases (the goldens in
    /// `tests/golden/reference_codec` check them on whole notes).
    #[test]
    fn reference_conventions_table() {
        let cases: Vec<(Vec<Span>, &str)> = vec![
            (
                vec![s(2, 6, Drug), s(2, 6, DefiningProblem)],
                "01<drug_decision><define_problem>2345</define_problem></drug_decision>6789abcdef",
            ),
            (
                vec![s(2, 6, Deferment), s(2, 6, DefiningProblem), s(2, 6, Drug)],
                "01<defer_decision><drug_decision><define_problem>2345</define_problem></drug_decision></defer_decision>6789abcdef",
            ),
            (
                vec![s(2, 10, Drug), s(4, 6, TreatmentGoal)],
                "01<drug_decision>23<treatment_goal>45</treatment_goal>6789</drug_decision>abcdef",
            ),
            (
                vec![s(2, 8, DefiningProblem), s(5, 12, EvaluatingTestResult)],
                "01<define_problem>234<evaluate_result>567</define_problem>89ab</evaluate_result>cdef",
            ),
            (
                vec![s(2, 8, DefiningProblem), s(5, 8, EvaluatingTestResult)],
                "01<define_problem>234<evaluate_result>567</evaluate_result></define_problem>89abcdef",
            ),
            (
                vec![s(2, 5, DefiningProblem), s(5, 8, EvaluatingTestResult)],
                "01<define_problem>234</define_problem><evaluate_result>567</evaluate_result>89abcdef",
            ),
            (
                vec![s(2, 5, DefiningProblem), s(2, 5, DefiningProblem)],
                "01<define_problem><define_problem>234</define_problem></define_problem>56789abcdef",
            ),
        ];
        for (spans, want) in cases {
            assert_eq!(encode(TEXT, &spans).unwrap(), want, "{spans:?}");
            // Input order never matters except on full ties.
            let reversed: Vec<Span> = spans.iter().rev().copied().collect();
            assert_eq!(encode(TEXT, &reversed).unwrap(), want, "{reversed:?}");
        }
    }

    #[test]
    fn text_is_copied_verbatim_without_escaping() {
        let text = "a < b & c > d\r\n\u{1f600}";
        let out = encode(text, &[Span::new(2, 5, Drug)]).unwrap();
        assert_eq!(
            out,
            "a <drug_decision>< b</drug_decision> & c > d\r\n\u{1f600}"
        );
    }

    #[test]
    fn offsets_are_code_points() {
        let text = "\u{e9}\u{1f600}x";
        let out = encode(text, &[Span::new(1, 2, Drug)]).unwrap();
        assert_eq!(out, "\u{e9}<drug_decision>\u{1f600}</drug_decision>x");
    }

    #[test]
    fn spans_outside_the_text_are_refused() {
        let err = encode("abc", &[Span::new(1, 4, Drug)]).unwrap_err();
        assert_eq!(err.text_len, 3);
    }
}
