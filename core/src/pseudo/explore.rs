//! Choosing the entropy threshold (`lamar-spec.md` §8.4, the exploration): how well the model
//! tags the validation documents it is confident about, against how many unlabeled notes each
//! threshold keeps.
//!
//! Every validation output is decoded against its document and scored alone (span F1 and
//! token F1 of that one document, the scorer's options; their mean is its "base"). For each
//! quantile `q` of the validation entropies (pandas' interpolation), the documents at or below
//! it: how many, their mean scores, and how many unlabeled notes the same threshold keeps;
//! then Spearman's ρ between entropy and each score, and a scatter plot with the thresholds.
//!
//! The reference's bugs here, fixed: a span that cannot be placed no longer crashes the run
//! (it is dropped, as [`crate::codec::decode()`] drops it); the unlabeled share divides the
//! unlabeled count kept by the unlabeled total (the reference divided a stale validation count
//! by the validation total); a document without gold is an error naming it (the reference
//! scored it against an empty gold when the ids were keyed differently).

use super::select::quantile;
use crate::codec::{DecodeOptions, decode};
use crate::formats::gold::GoldDocument;
use crate::formats::inference::InferenceRecord;
use crate::formats::predictions::PredictedSpan;
use crate::grpo::mean;
use crate::plot::{Chart, Series, scatter_chart};
use crate::scorer::{ScoreError, Scorer, ScorerOptions};
use serde::Serialize;
use std::collections::BTreeMap;

/// One validation document, scored alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredDocument {
    /// Its id.
    pub file_id: String,
    /// The model's mean negative log-likelihood on it.
    pub entropy: f64,
    /// Span F1 of this document.
    pub span_f1: f64,
    /// Token F1 of this document.
    pub token_f1: f64,
    /// Their mean.
    pub base: f64,
}

/// Why the documents could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// A validation document has no gold.
    #[error("document {0} has no gold annotations (is it a validation document?)")]
    NoGold(String),
    /// The scorer failed.
    #[error(transparent)]
    Score(#[from] ScoreError),
}

/// Each validation output decoded and scored against its gold (`gold` keyed by document id;
/// a trailing `_` of a gold file's name is ignored).
pub fn score_documents(
    records: &[InferenceRecord],
    gold: &BTreeMap<String, GoldDocument>,
    options: ScorerOptions,
) -> Result<Vec<ScoredDocument>, ExploreError> {
    let by_id: BTreeMap<&str, &GoldDocument> = gold
        .iter()
        .map(|(k, v)| (k.trim_end_matches('_'), v))
        .collect();
    let decode_options = DecodeOptions::default();
    records
        .iter()
        .map(|r| {
            let doc = by_id
                .get(r.file_id.as_str())
                .ok_or_else(|| ExploreError::NoGold(r.file_id.clone()))?;
            let decoded = decode(&r.predicted, &r.raw_text, &decode_options);
            let spans: Vec<PredictedSpan> = decoded
                .spans
                .iter()
                .map(|s| PredictedSpan {
                    start_offset: s.span.start as i64,
                    end_offset: s.span.end as i64,
                    category: i64::from(s.span.category.id()),
                    decision: None,
                })
                .collect();
            let id = r.file_id.clone();
            let scorer = Scorer::new(
                &BTreeMap::from([(id.clone(), doc.annotations.clone())]),
                &BTreeMap::from([(id.clone(), r.raw_text.clone())]),
                None,
                options,
            )?;
            let e = scorer.score(&BTreeMap::from([(id, spans)]))?;
            Ok(ScoredDocument {
                file_id: r.file_id.clone(),
                entropy: r.entropy,
                span_f1: e.span_f1.f1,
                token_f1: e.token_f1,
                base: (e.span_f1.f1 + e.token_f1) / 2.0,
            })
        })
        .collect()
}

/// One threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdRow {
    /// The quantile of the validation entropies.
    pub quantile: f64,
    /// The entropy at that quantile.
    pub threshold: f64,
    /// Validation documents at or below it.
    pub kept: usize,
    /// Their share of the validation documents.
    pub kept_fraction: f64,
    /// Their mean span F1, token F1 and base (`None` when none is kept).
    pub span_f1: Option<f64>,
    /// See `span_f1`.
    pub token_f1: Option<f64>,
    /// See `span_f1`.
    pub base: Option<f64>,
    /// Unlabeled notes at or below the threshold.
    pub unlabeled_kept: usize,
    /// Their share of the unlabeled notes.
    pub unlabeled_fraction: f64,
}

/// The exploration's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exploration {
    /// One row per quantile.
    pub thresholds: Vec<ThresholdRow>,
    /// Spearman's ρ of entropy against span F1, token F1 and base.
    pub spearman_span_f1: f64,
    /// See `spearman_span_f1`.
    pub spearman_token_f1: f64,
    /// See `spearman_span_f1`.
    pub spearman_base: f64,
}

/// Ranks from 1, ties given their mean rank (as `scipy.stats.rankdata`).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = mean;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation (Pearson's of the mean ranks, as `scipy.stats.spearmanr`); NaN
/// when either side is constant or there are fewer than two values.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    if x.len() != y.len() || x.len() < 2 {
        return f64::NAN;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// The thresholds at `quantiles` of the validation entropies and the correlations.
pub fn explore(documents: &[ScoredDocument], unlabeled: &[f64], quantiles: &[f64]) -> Exploration {
    let entropies: Vec<f64> = documents.iter().map(|d| d.entropy).collect();
    let thresholds = quantiles
        .iter()
        .filter_map(|&q| {
            let threshold = quantile(&entropies, q)?;
            let kept: Vec<&ScoredDocument> = documents
                .iter()
                .filter(|d| d.entropy <= threshold)
                .collect();
            let unlabeled_kept = unlabeled.iter().filter(|&&e| e <= threshold).count();
            Some(ThresholdRow {
                quantile: q,
                threshold,
                kept: kept.len(),
                kept_fraction: kept.len() as f64 / documents.len() as f64,
                span_f1: mean(kept.iter().map(|d| d.span_f1)),
                token_f1: mean(kept.iter().map(|d| d.token_f1)),
                base: mean(kept.iter().map(|d| d.base)),
                unlabeled_kept,
                unlabeled_fraction: unlabeled_kept as f64 / unlabeled.len().max(1) as f64,
            })
        })
        .collect();
    let column = |f: fn(&ScoredDocument) -> f64| documents.iter().map(f).collect::<Vec<_>>();
    Exploration {
        thresholds,
        spearman_span_f1: spearman(&entropies, &column(|d| d.span_f1)),
        spearman_token_f1: spearman(&entropies, &column(|d| d.token_f1)),
        spearman_base: spearman(&entropies, &column(|d| d.base)),
    }
}

/// Entropy against base score, one dot per validation document, with a vertical rule at each
/// threshold, as SVG.
pub fn scatter(documents: &[ScoredDocument], exploration: &Exploration, title: &str) -> String {
    let mut series = vec![Series {
        name: "validation documents".into(),
        points: documents.iter().map(|d| (d.entropy, d.base)).collect(),
    }];
    for row in &exploration.thresholds {
        series.push(Series {
            name: format!("q {} = {:.3}", row.quantile, row.threshold),
            points: vec![(row.threshold, 0.0), (row.threshold, 1.0)],
        });
    }
    scatter_chart(
        &Chart {
            title: title.into(),
            x_label: "entropy (mean negative log-likelihood)".into(),
            y_label: "base score ((span F1 + token F1) / 2)".into(),
        },
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_uses_mean_ranks_for_ties() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[5.0, 1.0, 5.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    fn doc(id: &str, entropy: f64, base: f64) -> ScoredDocument {
        ScoredDocument {
            file_id: id.into(),
            entropy,
            span_f1: base,
            token_f1: base,
            base,
        }
    }

    #[test]
    fn thresholds_count_what_they_keep_on_both_sides() {
        let docs = [
            doc("a", 0.1, 0.9),
            doc("b", 0.2, 0.7),
            doc("c", 0.4, 0.2),
            doc("d", 0.8, 0.1),
        ];
        let unlabeled = [0.05, 0.15, 0.5, 0.9, 1.0];
        let e = explore(&docs, &unlabeled, &[0.0, 0.5]);
        let half = &e.thresholds[1];
        assert!((half.threshold - 0.3).abs() < 1e-12);
        assert_eq!((half.kept, half.unlabeled_kept), (2, 2));
        assert_eq!(
            half.unlabeled_fraction, 0.4,
            "the unlabeled share of the unlabeled total"
        );
        assert!((half.base.unwrap() - 0.8).abs() < 1e-12);
        assert!(
            e.spearman_base < -0.99,
            "confident documents score better here"
        );
        let svg = scatter(&docs, &e, "exploration");
        assert_eq!(svg.matches("<circle").count(), 4);
    }
}
