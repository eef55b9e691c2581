//! BIO token labels for the encoder baseline (lamar-spec §9): gold spans → one label per
//! token, and labels → spans.
//!
//! Labels are the reference's: category `c` (1–9) has `B = 2(c − 1)` and `I = 2(c − 1) + 1`,
//! and `O = 18`, 19 in all. A token is known by its code-point range in the text (special
//! tokens have an empty range and are never part of a span).
//!
//! Placing spans follows the reference (`baselines/train_bert.py`) — spans in (start, end)
//! order; a start that falls between tokens moves up to 9 code points forward; an end that
//! cannot be placed runs to the last token; a span whose tokens already hold a `B` is left
//! out; otherwise `B` on its first token and `I` on the rest, over earlier `I`s — with its two
//! bugs fixed: a start that cannot be placed leaves out that span only (the reference stopped
//! reading the document there), and decoding closes a span that reaches the last token (the
//! reference never did).

use crate::{Category, Span};

/// Labels in all: B and I of the nine categories, then O.
pub const LABELS: usize = 19;
/// The label of a token outside every span.
pub const OUTSIDE: u8 = 18;
/// How far (code points) a start between tokens may move forward.
const START_RETRIES: usize = 9;

/// The `B` label of `category`.
pub fn begin(category: Category) -> u8 {
    2 * (category.id() - 1)
}

/// The `I` label of `category`.
pub fn inside(category: Category) -> u8 {
    begin(category) + 1
}

/// The category of a `B` or `I` label (none for `O` or a label out of range).
pub fn category_of(label: u8) -> Option<Category> {
    if (label as usize) < LABELS - 1 {
        Category::from_id(i64::from(label / 2) + 1)
    } else {
        None
    }
}

/// A token's half-open code-point range in its text; empty for special tokens.
pub type TokenRange = (usize, usize);

/// The labels of a sequence and what could not be placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// One label per token.
    pub labels: Vec<u8>,
    /// Spans placed.
    pub placed: usize,
    /// Spans whose start lies on no token (even 9 code points on).
    pub unplaced: Vec<Span>,
    /// Spans left out because their tokens already held a `B` (nested or overlapping spans).
    pub overlapping: usize,
}

/// The token whose range holds code point `at`.
fn token_at(tokens: &[TokenRange], at: usize) -> Option<usize> {
    // Ranges are in text order; special tokens (empty) are skipped by the comparison.
    let i = tokens.partition_point(|&(_, end)| end <= at);
    (i < tokens.len() && tokens[i].0 <= at && at < tokens[i].1).then_some(i)
}

/// The labels of `tokens` for the gold `spans` (code points of the same text).
pub fn assign(tokens: &[TokenRange], spans: &[Span]) -> Assignment {
    let mut labels = vec![OUTSIDE; tokens.len()];
    let mut sorted: Vec<Span> = spans.to_vec();
    sorted.sort_by_key(|s| (s.start, s.end));
    let mut placed = 0;
    let mut unplaced = Vec::new();
    let mut overlapping = 0;
    let last = tokens.iter().rposition(|&(s, e)| s < e);
    for span in sorted {
        let first = (0..=START_RETRIES)
            .map(|k| span.start + k)
            .take_while(|&at| at < span.end.max(span.start + 1))
            .find_map(|at| token_at(tokens, at));
        let (Some(first), Some(last)) = (first, last) else {
            unplaced.push(span);
            continue;
        };
        let end = token_at(tokens, span.end.saturating_sub(1))
            .unwrap_or(last)
            .max(first);
        let range = first..=end;
        if labels[range.clone()]
            .iter()
            .any(|&l| l < OUTSIDE && l % 2 == 0)
        {
            overlapping += 1;
            continue;
        }
        for i in range {
            if tokens[i].0 < tokens[i].1 {
                labels[i] = if i == first {
                    begin(span.category)
                } else {
                    inside(span.category)
                };
            }
        }
        placed += 1;
    }
    Assignment {
        labels,
        placed,
        unplaced,
        overlapping,
    }
}

/// The spans of `labels` over `tokens`: a span starts at a `B`, or at an `I` that does not
/// continue a span of its category, and goes on while the tokens are `I` of its category
/// (special tokens end it). A span that reaches the last token is kept.
pub fn decode(labels: &[u8], tokens: &[TokenRange]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut open: Option<(Category, usize, usize)> = None;
    for (&label, &(start, end)) in labels.iter().zip(tokens) {
        let special = start >= end;
        let category = if special { None } else { category_of(label) };
        let continues = matches!((open, category), (Some((c, _, _)), Some(d))
            if c == d && label == inside(d));
        if continues {
            if let Some(o) = open.as_mut() {
                o.2 = end;
            }
            continue;
        }
        if let Some((c, s, e)) = open.take() {
            spans.push(Span::new(s, e, c));
        }
        if let Some(c) = category {
            open = Some((c, start, end));
        }
    }
    if let Some((c, s, e)) = open {
        spans.push(Span::new(s, e, c));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Tokens of `text` split at spaces (each word one token), between `<s>` and `</s>`.
    fn words(text: &str) -> Vec<TokenRange> {
        let mut tokens = vec![(0, 0)];
        let mut start = None;
        for (i, c) in text.chars().chain(std::iter::once(' ')).enumerate() {
            match (c == ' ', start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    tokens.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        tokens.push((0, 0));
        tokens
    }

    #[test]
    fn labels_round_trip_categories() {
        for c in Category::ALL {
            assert_eq!(category_of(begin(c)), Some(c));
            assert_eq!(category_of(inside(c)), Some(c));
        }
        assert_eq!(category_of(OUTSIDE), None);
        assert_eq!(begin(Category::ALL[8]), 16);
    }

    #[test]
    fn a_span_on_the_last_token_is_decoded() {
        let text = "start aspirin now";
        let tokens = words(text);
        let span = Span::new(14, 17, Category::Drug);
        let a = assign(&tokens, &[span]);
        assert_eq!(
            a.labels,
            [OUTSIDE, OUTSIDE, OUTSIDE, begin(Category::Drug), OUTSIDE]
        );
        assert_eq!(decode(&a.labels, &tokens), [span]);
        // Without the closing special token the span ends the sequence: still decoded.
        assert_eq!(decode(&a.labels[..4], &tokens[..4]), [span]);
    }

    #[test]
    fn an_unplaceable_start_leaves_out_that_span_only() {
        // "a          b c": the first span starts in a run of spaces more than 9 long.
        let text = "a            b c";
        let tokens = words(text);
        let lost = Span::new(2, 13, Category::Drug);
        let kept = Span::new(15, 16, Category::Deferment);
        let a = assign(&tokens, &[lost, kept]);
        assert_eq!(a.unplaced, [lost]);
        assert_eq!(a.placed, 1);
        assert_eq!(decode(&a.labels, &tokens), [kept]);
    }

    #[test]
    fn a_start_between_tokens_moves_forward_and_nested_spans_are_left_out() {
        let text = "give  two tabs daily";
        let tokens = words(text);
        // Starts on the second space: moves to "two".
        let outer = Span::new(5, 14, Category::Drug);
        let inner = Span::new(6, 9, Category::Drug);
        let a = assign(&tokens, &[inner, outer]);
        assert_eq!(a.placed, 1);
        assert_eq!(a.overlapping, 1);
        assert_eq!(
            decode(&a.labels, &tokens),
            [Span::new(6, 14, Category::Drug)]
        );
    }

    proptest! {
        /// Spans on whole tokens that do not overlap come back exactly.
        #[test]
        fn token_aligned_spans_round_trip(
            n in 1usize..40,
            picks in proptest::collection::vec((0usize..40, 1usize..4, 0usize..9), 0..8),
        ) {
            let text: String = (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
            let tokens = words(&text);
            let real = &tokens[1..tokens.len() - 1];
            let mut taken = vec![false; real.len()];
            let mut spans = Vec::new();
            for (first, len, c) in picks {
                let last = (first + len - 1).min(real.len() - 1);
                if first >= real.len() || taken[first..=last].iter().any(|&t| t) {
                    continue;
                }
                taken[first..=last].iter_mut().for_each(|t| *t = true);
                spans.push(Span::new(real[first].0, real[last].1, Category::ALL[c]));
            }
            spans.sort_by_key(|s| s.start);
            let a = assign(&tokens, &spans);
            prop_assert_eq!(a.placed, spans.len());
            prop_assert_eq!(decode(&a.labels, &tokens), spans);
        }
    }
}
