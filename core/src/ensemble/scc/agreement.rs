//! Step 1 of Span-Cluster Consensus: how much the models agree. The reference's greedy soft-F1
//! of two span lists (`greedy_soft_match_score`), and per category each model's weight, its mean
//! agreement with every other model, normalised (`compute_model_weights_for_category`).

use crate::ensemble::{ModelWeight, iou};
use crate::span::Span;

/// Reusable buffers of the agreement computation.
#[derive(Default)]
pub(super) struct AgreementScratch {
    /// Soft-F1 candidate pairs `(IoU, i, j)`.
    candidates: Vec<(f64, usize, usize)>,
    /// Soft-F1 of every ordered pair of models.
    agreement: Vec<f64>,
    used_a: Vec<bool>,
    used_b: Vec<bool>,
}

/// Greedy soft-F1 agreement of two span lists (the reference's `greedy_soft_match_score`).
pub fn soft_f1(a: &[Span], b: &[Span], min_iou: f64) -> f64 {
    soft_f1_both_ways(a, b, min_iou, &mut AgreementScratch::default()).0
}

/// `(soft_f1(a, b), soft_f1(b, a))` from one set of IoUs. The two can differ: the greedy
/// matching takes equal scores in the order the reference generates them (outer list first).
fn soft_f1_both_ways(
    a: &[Span],
    b: &[Span],
    min_iou: f64,
    scratch: &mut AgreementScratch,
) -> (f64, f64) {
    if a.is_empty() && b.is_empty() {
        return (1.0, 1.0);
    }
    if a.is_empty() || b.is_empty() {
        return (0.0, 0.0);
    }
    let candidates = &mut scratch.candidates;
    candidates.clear();
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            // Disjoint spans score 0, which only a threshold of 0 (or less) admits.
            if min_iou > 0.0 && (x.end <= y.start || y.end <= x.start) {
                continue;
            }
            let score = iou(x, y);
            if score >= min_iou {
                candidates.push((score, i, j));
            }
        }
    }
    // Python's reverse=True sort is stable: equal scores keep the order they were generated
    // in, so an unstable sort on (score descending, outer index, inner index) is the same.
    candidates.sort_unstable_by(|p, q| q.0.total_cmp(&p.0).then((p.1, p.2).cmp(&(q.1, q.2))));
    let ab = greedy_total(
        candidates,
        a.len(),
        b.len(),
        &mut scratch.used_a,
        &mut scratch.used_b,
    );
    candidates.sort_unstable_by(|p, q| q.0.total_cmp(&p.0).then((p.2, p.1).cmp(&(q.2, q.1))));
    let ba = greedy_total(
        candidates,
        a.len(),
        b.len(),
        &mut scratch.used_a,
        &mut scratch.used_b,
    );
    (f1(ab, a.len(), b.len()), f1(ba, b.len(), a.len()))
}

/// Sum of the scores of a greedy one-to-one matching taken in `candidates` order.
fn greedy_total(
    candidates: &[(f64, usize, usize)],
    len_a: usize,
    len_b: usize,
    used_a: &mut Vec<bool>,
    used_b: &mut Vec<bool>,
) -> f64 {
    used_a.clear();
    used_a.resize(len_a, false);
    used_b.clear();
    used_b.resize(len_b, false);
    let mut total = 0.0;
    for &(score, i, j) in candidates {
        if used_a[i] || used_b[j] {
            continue;
        }
        used_a[i] = true;
        used_b[j] = true;
        total += score;
    }
    total
}

/// The reference's F1 of a matching total over `own` predicted and `other` reference spans.
fn f1(total: f64, own: usize, other: usize) -> f64 {
    let precision = total / own as f64;
    let recall = total / other as f64;
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

/// Per-model weights of one category (the reference's `compute_model_weights_for_category`):
/// `(model index, its spans of the category)` in model order, models without such spans
/// included.
pub fn model_weights<S: AsRef<[Span]>>(
    by_model: &[(usize, S)],
    min_pairwise_iou: f64,
) -> Vec<ModelWeight> {
    let view: Vec<(usize, &[Span])> = by_model.iter().map(|(m, s)| (*m, s.as_ref())).collect();
    weights_with(&view, min_pairwise_iou, &mut AgreementScratch::default())
}

/// [`model_weights`] on borrowed span lists, with reusable buffers.
pub(super) fn weights_with(
    by_model: &[(usize, &[Span])],
    min_pairwise_iou: f64,
    scratch: &mut AgreementScratch,
) -> Vec<ModelWeight> {
    let m = by_model.len();
    if m == 1 {
        return vec![ModelWeight {
            model: by_model[0].0,
            weight: 1.0,
        }];
    }
    // agreement[p * m + q] = soft_f1(model p, model q).
    let mut agreement = std::mem::take(&mut scratch.agreement);
    agreement.clear();
    agreement.resize(m * m, 0.0);
    for p in 0..m {
        for q in p + 1..m {
            let (pq, qp) =
                soft_f1_both_ways(by_model[p].1, by_model[q].1, min_pairwise_iou, scratch);
            agreement[p * m + q] = pq;
            agreement[q * m + p] = qp;
        }
    }
    let mut weights: Vec<ModelWeight> = Vec::with_capacity(m);
    for (p, &(model, _)) in by_model.iter().enumerate() {
        // The mean of the agreements with every other model, summed in model order.
        let (mut sum, mut count) = (0.0, 0usize);
        for (q, &(other, _)) in by_model.iter().enumerate() {
            if other != model {
                sum += agreement[p * m + q];
                count += 1;
            }
        }
        let weight = if count == 0 { 0.0 } else { sum / count as f64 };
        weights.push(ModelWeight { model, weight });
    }
    scratch.agreement = agreement;
    let mut total = 0.0;
    for w in &weights {
        total += w.weight;
    }
    if total > 0.0 {
        for w in &mut weights {
            w.weight /= total;
        }
    } else {
        let uniform = 1.0 / weights.len() as f64;
        for w in &mut weights {
            w.weight = uniform;
        }
    }
    weights
}
