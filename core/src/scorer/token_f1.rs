//! Token F1: each token gets a label from the spans over it, then per-file macro F1 over labels.
//!
//! Two labelling rules:
//! * [`TokenF1Rule::Official`] (MedDec `evaluate.py`): the first span in list order that overlaps
//!   a token labels it;
//! * [`TokenF1Rule::Lamar`] (LAMAR's copy): a token overlapped by two or more spans is
//!   ambiguous (-1); positions ambiguous in the gold are left out of the score.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How overlapping spans label a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TokenF1Rule {
    /// First span wins (the official evaluator).
    #[default]
    Official,
    /// Tokens under two or more spans are ambiguous (LAMAR's evaluator).
    Lamar,
}

impl fmt::Display for TokenF1Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenF1Rule::Official => "official",
            TokenF1Rule::Lamar => "lamar",
        })
    }
}

impl FromStr for TokenF1Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "official" => Ok(TokenF1Rule::Official),
            "lamar" => Ok(TokenF1Rule::Lamar),
            other => Err(format!(
                "unknown token F1 rule `{other}` (expected official or lamar)"
            )),
        }
    }
}

/// Labels `tokens` (sorted, non-overlapping `(start, end)` code-point spans) with `spans`
/// (`(start, end, label)` in list order; labels outside 1 to 9 must already be removed).
/// Linear in tokens plus overlaps: each span visits only the tokens it overlaps.
pub fn label_tokens(
    tokens: &[(usize, usize)],
    spans: &[(i64, i64, u8)],
    rule: TokenF1Rule,
) -> Vec<i8> {
    let mut labels = vec![0i8; tokens.len()];
    let mut counts = vec![
        0u32;
        if rule == TokenF1Rule::Lamar {
            tokens.len()
        } else {
            0
        }
    ];
    for &(start, end, label) in spans {
        // A token overlaps iff tok.start < end and tok.end > start.
        let first = tokens.partition_point(|&(_, e)| (e as i64) <= start);
        for i in first..tokens.len() {
            if tokens[i].0 as i64 >= end {
                break;
            }
            match rule {
                TokenF1Rule::Official => {
                    if labels[i] == 0 {
                        labels[i] = label as i8;
                    }
                }
                TokenF1Rule::Lamar => {
                    counts[i] += 1;
                    if counts[i] == 1 {
                        labels[i] = label as i8;
                    } else if counts[i] == 2 {
                        labels[i] = -1;
                    }
                }
            }
        }
    }
    labels
}

/// Per-label F1 averaged over the labels present (ascending label order, as CPython iterates a
/// set of small ints), with the rule's handling of ambiguous positions.
pub fn token_f1(gold: &[i8], pred: &[i8], rule: TokenF1Rule) -> f64 {
    let (g, p): (Vec<i8>, Vec<i8>) = match rule {
        TokenF1Rule::Official => (gold.to_vec(), pred.to_vec()),
        TokenF1Rule::Lamar => {
            let kept: Vec<(i8, i8)> = gold
                .iter()
                .zip(pred)
                .filter(|(g, _)| **g != -1)
                .map(|(g, p)| (*g, *p))
                .collect();
            if kept.is_empty() {
                return 1.0;
            }
            kept.into_iter().unzip()
        }
    };
    let mut present = [false; 10];
    for &l in g.iter().chain(&p) {
        if l > 0 {
            present[l as usize] = true;
        }
    }
    if !present.iter().any(|&x| x) {
        return if g == p { 1.0 } else { 0.0 };
    }
    let mut sum = 0.0;
    let mut n = 0;
    for label in 1..=9i8 {
        if !present[label as usize] {
            continue;
        }
        let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
        for (&gi, &pi) in g.iter().zip(&p) {
            match (gi == label, pi == label) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                _ => {}
            }
        }
        let (_, _, f1) = super::precision_recall_f1(tp, fp, fn_);
        sum += f1;
        n += 1;
    }
    sum / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_span_wins_officially_and_overlaps_are_ambiguous_for_lamar() {
        let tokens = [(0, 2), (3, 5), (6, 8)];
        let spans = [(0, 5, 3), (3, 8, 5)];
        assert_eq!(
            label_tokens(&tokens, &spans, TokenF1Rule::Official),
            vec![3, 3, 5]
        );
        assert_eq!(
            label_tokens(&tokens, &spans, TokenF1Rule::Lamar),
            vec![3, -1, 5]
        );
        // Touching is not overlapping.
        assert_eq!(
            label_tokens(&tokens, &[(2, 3, 7)], TokenF1Rule::Official),
            vec![0, 0, 0]
        );
        // Odd offsets (negative, reversed) overlap nothing or follow the same inequality.
        assert_eq!(
            label_tokens(&tokens, &[(-5, 1, 9)], TokenF1Rule::Official),
            vec![9, 0, 0]
        );
        assert_eq!(
            label_tokens(&tokens, &[(7, 1, 9)], TokenF1Rule::Official),
            vec![0, 0, 0]
        );
    }

    #[test]
    fn macro_f1_over_present_labels() {
        assert_eq!(token_f1(&[0, 0], &[0, 0], TokenF1Rule::Official), 1.0);
        assert_eq!(
            token_f1(&[3, 3, 0], &[3, 0, 0], TokenF1Rule::Official),
            2.0 * 1.0 * 0.5 / 1.5
        );
        assert_eq!(token_f1(&[3, 0], &[0, 5], TokenF1Rule::Official), 0.0);
        assert_eq!(token_f1(&[-1, -1], &[3, 3], TokenF1Rule::Lamar), 1.0);
        assert_eq!(token_f1(&[0, 3], &[-1, 3], TokenF1Rule::Lamar), 1.0);
        assert_eq!(token_f1(&[0], &[-1], TokenF1Rule::Lamar), 0.0);
    }
}
