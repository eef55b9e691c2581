//! Exact-match span scores: a quick, strict yardstick.
//!
//! A predicted span counts as correct only if some gold span of the same document has the same
//! start, end and category (set semantics: duplicates collapse). This is **not** the shared-task
//! metric, which matches refined, lower-cased span *text* and adds token F1 and worst-group
//! scores; it is a sanity check that needs no tokenizer.

use crate::span::Span;
use serde::Serialize;
use std::collections::HashSet;

/// Counts and derived scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ExactSpanScore {
    /// Predicted spans found in the gold.
    pub true_positives: usize,
    /// Predicted spans not in the gold.
    pub false_positives: usize,
    /// Gold spans not predicted.
    pub false_negatives: usize,
}

impl ExactSpanScore {
    /// Adds one document's spans.
    pub fn add(&mut self, gold: &[Span], predicted: &[Span]) {
        let gold: HashSet<&Span> = gold.iter().collect();
        let predicted: HashSet<&Span> = predicted.iter().collect();
        let tp = gold.intersection(&predicted).count();
        self.true_positives += tp;
        self.false_positives += predicted.len() - tp;
        self.false_negatives += gold.len() - tp;
    }

    /// Precision (0 when nothing was predicted).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Recall (0 when there is no gold).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// F1 (0 when precision and recall are both 0).
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;

    #[test]
    fn counts_with_set_semantics() {
        let gold = [Span::new(0, 4, Drug), Span::new(5, 9, Deferment)];
        let pred = [
            Span::new(0, 4, Drug),
            Span::new(0, 4, Drug),
            Span::new(5, 9, Drug),
        ];
        let mut score = ExactSpanScore::default();
        score.add(&gold, &pred);
        assert_eq!(
            (
                score.true_positives,
                score.false_positives,
                score.false_negatives
            ),
            (1, 1, 1)
        );
        assert_eq!(score.f1(), 0.5);
        assert_eq!(ExactSpanScore::default().f1(), 0.0);
    }
}
