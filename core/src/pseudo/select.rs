//! Choosing pseudo-labels by the model's confidence and mixing them into the training data
//! (`lamar-spec.md` §8.4, the mixing step): the unlabeled notes the model tagged with the lowest
//! mean negative log-likelihood ("entropy", lower is more confident) — those at or below the
//! `q`-quantile of all their entropies, pandas' linear interpolation — become training rows
//! after the real ones.
//!
//! Two of the reference's bugs cannot happen here. Its pseudo rows kept their label in
//! `predicted` while the trainer reads `gold_span` (NaN, so the model trained on the literal
//! string "nan"): lamar writes every pseudo row's target as `gold_span`. Its `--threshold 0`
//! meant "not given": here `q = 0` keeps the most confident note(s). lamar also re-anchors each
//! target: the model's tagged text is decoded against the note ([`crate::codec::decode()`]) and
//! its spans written back into the raw text, so that a target is always the note itself with
//! balanced tags (what `lamar train dft` checks), even where the model changed a character;
//! spans it could not place are dropped and counted.

use crate::codec::{DecodeOptions, decode, encode, encoding_order};
use crate::formats::inference::InferenceRecord;
use crate::formats::rows::{GoldOffset, TrainingRow};

/// The `q`-quantile of `values` as pandas' `Series.quantile(q)` computes it (linear
/// interpolation between the order statistics at `q·(n − 1)`); `None` without values or for
/// `q` outside [0, 1]. NaN values are left out, as pandas skips them.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let position = q * (sorted.len() - 1) as f64;
    let (below, fraction) = (position.floor() as usize, position.fract());
    let above = (below + 1).min(sorted.len() - 1);
    Some(sorted[below] + fraction * (sorted[above] - sorted[below]))
}

/// What [`pseudo_rows`] chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The entropy threshold (the quantile).
    pub threshold: f64,
    /// The chosen notes as training rows, in the predictions' order.
    pub rows: Vec<TrainingRow>,
    /// Of them, outputs the token limit cut.
    pub cut: usize,
    /// Spans of the chosen outputs that could not be placed in their note.
    pub dropped_spans: usize,
}

/// The notes of `predictions` whose entropy is at most the `q`-quantile of all of them, as
/// training rows (see the module's notes); `None` when there is no quantile.
pub fn pseudo_rows(predictions: &[InferenceRecord], q: f64) -> Option<Selection> {
    let entropies: Vec<f64> = predictions.iter().map(|p| p.entropy).collect();
    let threshold = quantile(&entropies, q)?;
    let options = DecodeOptions::default();
    let mut selection = Selection {
        threshold,
        rows: Vec::new(),
        cut: 0,
        dropped_spans: 0,
    };
    for p in predictions.iter().filter(|p| p.entropy <= threshold) {
        let decoded = decode(&p.predicted, &p.raw_text, &options);
        let spans: Vec<_> = decoded.spans.iter().map(|s| s.span).collect();
        let ordered = encoding_order(&spans);
        let gold_span = encode(&p.raw_text, &ordered).expect("decoded spans lie in the text");
        selection.dropped_spans += decoded.dropped.len();
        selection.cut += usize::from(!p.finished);
        selection.rows.push(TrainingRow {
            file_id: p.file_id.clone(),
            raw_text: p.raw_text.clone(),
            gold_span,
            gold_offsets: ordered.into_iter().map(GoldOffset::from).collect(),
        });
    }
    Some(selection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_as_pandas() {
        // pandas.Series([4, 1, 3, 2]).quantile(q) for q = 0, .1, .25, .5, 1.
        let v = [4.0, 1.0, 3.0, 2.0];
        let got: Vec<f64> = [0.0, 0.1, 0.25, 0.5, 1.0]
            .iter()
            .map(|&q| quantile(&v, q).unwrap())
            .collect();
        let want = [1.0, 1.3, 1.75, 2.5, 4.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert_eq!(quantile(&[f64::NAN, 5.0], 0.5), Some(5.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&v, 1.5), None);
    }

    fn record(id: &str, raw: &str, predicted: &str, entropy: f64) -> InferenceRecord {
        InferenceRecord {
            file_id: id.into(),
            raw_text: raw.into(),
            predicted: predicted.into(),
            entropy,
            new_tokens: 0,
            finished: true,
        }
    }

    #[test]
    fn the_most_confident_notes_become_rows_with_their_targets_in_gold_span() {
        let predictions = [
            record(
                "a",
                "Start aspirin now.",
                "Start <drug_decision>aspirin</drug_decision> now.",
                0.1,
            ),
            // The model changed a character: the target is re-anchored in the raw text.
            record(
                "b",
                "Hold metoprolol.",
                "<drug_decision>Hold metoprolol</drug_decision>!",
                0.2,
            ),
            record(
                "c",
                "Follow up.",
                "<defer_decision>Follow up</defer_decision>.",
                0.9,
            ),
        ];
        // q = 0 keeps the most confident note (the reference treated 0 as "not given").
        let zero = pseudo_rows(&predictions, 0.0).unwrap();
        assert_eq!(zero.rows.len(), 1);
        let half = pseudo_rows(&predictions, 0.5).unwrap();
        assert_eq!(half.threshold, 0.2);
        let targets: Vec<&str> = half.rows.iter().map(|r| r.gold_span.as_str()).collect();
        assert_eq!(
            targets,
            [
                "Start <drug_decision>aspirin</drug_decision> now.",
                "<drug_decision>Hold metoprolol</drug_decision>."
            ]
        );
        assert_eq!(half.rows[0].gold_offsets.len(), 1);
        for row in &half.rows {
            crate::formats::training::check_tagged_row(row).unwrap();
        }
    }
}
