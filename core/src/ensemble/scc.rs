//! Span-Cluster Consensus, LAMAR's ensemble (`ensemble/mbr.py`), reproduced exactly.
//!
//! For each category of a document:
//! 1. **weights**: each model's mean greedy soft-F1 agreement (IoU-weighted one-to-one
//!    matching at IoU ≥ `min_pairwise_iou`) with every other present model, normalised to sum to
//!    1 (uniform when all are 0; a lone model weighs 1);
//! 2. **clusters**: connected components of the pooled spans (models in index order) under
//!    IoU ≥ `min_cluster_iou`, found by the reference's depth-first search (its visiting order
//!    decides ties);
//! 3. **support**: summed weight of the distinct models in a cluster; kept if ≥
//!    `min_cluster_support`;
//! 4. **boundary**: the observed `(start, end)` with the highest summed weight, then the shortest,
//!    then the first seen. The reference also computes a "candidate" boundary from separately
//!    voted starts and ends, but only returns it when its score is strictly greater than the
//!    maximum, which cannot happen: that branch is dead. An older version of `mbr.py` has an
//!    `independent` switch that returns the separately voted start and end instead; it is
//!    [`BoundaryVote::Independent`] here;
//! 5. **dedup**: a kept span whose IoU with an earlier kept span of its category (sorted by
//!    category, start, end) is ≥ `min_iou_same_cat` is merged into it, the longer one winning.
//!
//! Output sorted by `(start, end, category)`.

use super::{CategoryExplanation, ClusterRecord, Member, Merged, ModelWeight, Voter, Votes, iou};
use crate::category::Category;
use crate::span::Span;
use serde::{Deserialize, Serialize};

/// The four thresholds; defaults are LAMAR's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SccParams {
    /// IoU that links two spans into a cluster (0.1).
    pub min_cluster_iou: f64,
    /// IoU that lets two spans match when weighting models (0.1).
    pub min_pairwise_iou: f64,
    /// Support a cluster needs to be kept (0.34).
    pub min_cluster_support: f64,
    /// IoU above which two kept spans of one category are merged (0.8).
    pub min_iou_same_cat: f64,
}

impl Default for SccParams {
    fn default() -> Self {
        SccParams {
            min_cluster_iou: 0.1,
            min_pairwise_iou: 0.1,
            min_cluster_support: 0.34,
            min_iou_same_cat: 0.8,
        }
    }
}

/// How a cluster's boundary is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundaryVote {
    /// The observed `(start, end)` pair with the most weight (LAMAR's behaviour).
    #[default]
    Joint,
    /// Start and end voted separately (start ties → smallest, end ties → largest), falling back
    /// to the joint vote when they cross.
    Independent,
}

/// Span-Cluster Consensus.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SpanClusterConsensus {
    /// Thresholds.
    pub params: SccParams,
    /// Boundary rule.
    pub boundary: BoundaryVote,
    /// Skip building the [`super::Explanation`] (tuning loops need only the spans).
    pub spans_only: bool,
}

/// Greedy soft-F1 agreement of two span lists (the reference's `greedy_soft_match_score`).
pub fn soft_f1(a: &[Span], b: &[Span], min_iou: f64) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
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
    // Python's reverse=True sort is stable: equal scores keep their (i, j) order.
    candidates.sort_by(|p, q| q.0.total_cmp(&p.0));
    let (mut used_a, mut used_b) = (vec![false; a.len()], vec![false; b.len()]);
    let mut total = 0.0;
    for (score, i, j) in candidates {
        if used_a[i] || used_b[j] {
            continue;
        }
        used_a[i] = true;
        used_b[j] = true;
        total += score;
    }
    let precision = total / a.len() as f64;
    let recall = total / b.len() as f64;
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

/// Per-model weights of one category (the reference's `compute_model_weights_for_category`).
pub fn model_weights(by_model: &[(usize, Vec<Span>)], min_pairwise_iou: f64) -> Vec<ModelWeight> {
    if by_model.len() == 1 {
        return vec![ModelWeight {
            model: by_model[0].0,
            weight: 1.0,
        }];
    }
    let mut weights: Vec<ModelWeight> = by_model
        .iter()
        .map(|(m, spans)| {
            let sims: Vec<f64> = by_model
                .iter()
                .filter(|(n, _)| n != m)
                .map(|(_, other)| soft_f1(spans, other, min_pairwise_iou))
                .collect();
            let mut sum = 0.0;
            for s in &sims {
                sum += s;
            }
            let weight = if sims.is_empty() {
                0.0
            } else {
                sum / sims.len() as f64
            };
            ModelWeight { model: *m, weight }
        })
        .collect();
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

/// Connected components under IoU ≥ `min_iou`, in the reference's depth-first visiting order.
/// Returns member indices into `spans`.
///
/// The reference scans every span for every span it visits. With a positive threshold only
/// overlapping spans can link, so this looks up the spans that start before the visited one
/// ends (an index sorted by start) and pushes the linked ones in ascending index order, which is
/// the order the reference's scan pushes them: the result is the same, in far fewer steps.
pub fn overlap_clusters(spans: &[Span], min_iou: f64) -> Vec<Vec<usize>> {
    let n = spans.len();
    let mut by_start: Vec<usize> = (0..n).collect();
    by_start.sort_by_key(|&k| spans[k].start);
    let starts: Vec<usize> = by_start.iter().map(|&k| spans[k].start).collect();
    let mut visited = vec![false; n];
    let mut clusters = Vec::new();
    let mut linked: Vec<usize> = Vec::new();
    for i in 0..n {
        if visited[i] {
            continue;
        }
        let mut stack = vec![i];
        visited[i] = true;
        let mut members = Vec::new();
        while let Some(cur) = stack.pop() {
            members.push(cur);
            let c = spans[cur];
            linked.clear();
            let links = |o: &Span| c.category == o.category && iou(&c, o) >= min_iou;
            if min_iou > 0.0 {
                let before_end = starts.partition_point(|&s| s < c.end);
                for &j in &by_start[..before_end] {
                    if !visited[j] && spans[j].end > c.start && links(&spans[j]) {
                        linked.push(j);
                    }
                }
                linked.sort_unstable();
            } else {
                linked.extend((0..n).filter(|&j| !visited[j] && links(&spans[j])));
            }
            for &j in &linked {
                visited[j] = true;
                stack.push(j);
            }
        }
        clusters.push(members);
    }
    clusters
}

/// The weight of `model` (0 when it has none).
pub(crate) fn weight_of(weights: &[ModelWeight], model: usize) -> f64 {
    weights
        .iter()
        .find(|w| w.model == model)
        .map_or(0.0, |w| w.weight)
}

/// Joint boundary vote: highest summed weight, then shortest, then first seen.
fn joint_vote(members: &[(usize, Span)], weights: &[ModelWeight]) -> (usize, usize) {
    let mut scores: Vec<((usize, usize), f64)> = Vec::new();
    for (model, s) in members {
        let w = weight_of(weights, *model);
        match scores.iter_mut().find(|(k, _)| *k == (s.start, s.end)) {
            Some((_, score)) => *score += w,
            None => scores.push(((s.start, s.end), w)),
        }
    }
    let mut best = scores[0];
    for &(k, score) in &scores[1..] {
        let better = score > best.1 || (score == best.1 && (k.1 - k.0) < (best.0.1 - best.0.0));
        if better {
            best = (k, score);
        }
    }
    best.0
}

/// Independent vote of start and end (the older `mbr.py`'s `independent=True`).
fn independent_vote(members: &[(usize, Span)], weights: &[ModelWeight]) -> (usize, usize) {
    let mut starts: Vec<(usize, f64)> = Vec::new();
    let mut ends: Vec<(usize, f64)> = Vec::new();
    for (model, s) in members {
        let w = weight_of(weights, *model);
        for (table, key) in [(&mut starts, s.start), (&mut ends, s.end)] {
            match table.iter_mut().find(|(k, _)| *k == key) {
                Some((_, score)) => *score += w,
                None => table.push((key, w)),
            }
        }
    }
    let best_start = starts
        .iter()
        .fold(None::<(usize, f64)>, |b, &(k, w)| match b {
            Some((bk, bw)) if bw > w || (bw == w && bk <= k) => Some((bk, bw)),
            _ => Some((k, w)),
        })
        .map(|(k, _)| k)
        .unwrap_or(0);
    let best_end = ends
        .iter()
        .fold(None::<(usize, f64)>, |b, &(k, w)| match b {
            Some((bk, bw)) if bw > w || (bw == w && bk >= k) => Some((bk, bw)),
            _ => Some((k, w)),
        })
        .map(|(k, _)| k)
        .unwrap_or(0);
    if best_end > best_start {
        (best_start, best_end)
    } else {
        joint_vote(members, weights)
    }
}

/// The reference's `deduplicate_final_spans`.
pub fn dedup(spans: Vec<Span>, min_iou_same_cat: f64) -> Vec<Span> {
    let mut sorted = spans;
    sorted.sort_by_key(|s| (s.category, s.start, s.end));
    let mut kept: Vec<Span> = Vec::with_capacity(sorted.len());
    for span in sorted {
        match kept
            .iter()
            .position(|p| p.category == span.category && iou(p, &span) >= min_iou_same_cat)
        {
            Some(i) => {
                if span.len() > kept[i].len() {
                    kept[i] = span;
                }
            }
            None => kept.push(span),
        }
    }
    kept
}

/// The pipeline shared by the cluster-based voters: per category, weight the models, cluster
/// the pooled spans (models in index order), sum each cluster's distinct-model support, let
/// `choose` pick its boundary, and keep the clusters whose support reaches the threshold.
/// Returns the kept spans (not yet de-duplicated) and, unless `spans_only`, the explanation.
pub(crate) fn vote_by_clusters(
    votes: &Votes,
    p: &SccParams,
    spans_only: bool,
    choose: impl Fn(&[(usize, Span)], &[ModelWeight]) -> (usize, usize),
) -> (Vec<Span>, super::Explanation) {
    let mut kept = Vec::new();
    let mut explanation = super::Explanation::default();
    for (category, by_model) in Category::ALL.into_iter().zip(votes.by_category()) {
        let weights = model_weights(&by_model, p.min_pairwise_iou);
        let pooled: Vec<(usize, Span)> = by_model
            .iter()
            .flat_map(|(m, spans)| spans.iter().map(move |s| (*m, *s)))
            .collect();
        if pooled.is_empty() {
            continue;
        }
        let spans: Vec<Span> = pooled.iter().map(|(_, s)| *s).collect();
        let mut records = Vec::new();
        for cluster in overlap_clusters(&spans, p.min_cluster_iou) {
            let members: Vec<(usize, Span)> = cluster.iter().map(|&k| pooled[k]).collect();
            let mut models: Vec<usize> = members.iter().map(|(m, _)| *m).collect();
            models.sort_unstable();
            models.dedup();
            // Summed in ascending model order, as CPython iterates a set of small ints.
            let mut support = 0.0;
            for m in &models {
                support += weight_of(&weights, *m);
            }
            let boundary = choose(&members, &weights);
            let is_kept = support >= p.min_cluster_support;
            if is_kept {
                kept.push(Span::new(boundary.0, boundary.1, category));
            }
            if spans_only {
                continue;
            }
            records.push(ClusterRecord {
                members: members
                    .iter()
                    .map(|(m, s)| Member {
                        model: *m,
                        start: s.start,
                        end: s.end,
                    })
                    .collect(),
                support,
                boundary,
                kept: is_kept,
            });
        }
        if !spans_only {
            explanation.categories.push(CategoryExplanation {
                category,
                weights,
                clusters: records,
            });
        }
    }
    (kept, explanation)
}

impl Voter for SpanClusterConsensus {
    fn name(&self) -> &'static str {
        "scc"
    }

    fn vote(&self, votes: &Votes) -> Merged {
        let (kept, explanation) = vote_by_clusters(
            votes,
            &self.params,
            self.spans_only,
            |members, weights| match self.boundary {
                BoundaryVote::Joint => joint_vote(members, weights),
                BoundaryVote::Independent => independent_vote(members, weights),
            },
        );
        let mut spans = dedup(kept, self.params.min_iou_same_cat);
        spans.sort_by_key(|s| (s.start, s.end, s.category));
        Merged { spans, explanation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;

    type Model = (usize, Vec<(usize, usize, Category)>);

    fn votes(models: Vec<Model>) -> Votes {
        Votes {
            models: models
                .into_iter()
                .map(|(m, v)| {
                    (
                        m,
                        v.into_iter().map(|(s, e, c)| Span::new(s, e, c)).collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn two_of_three_models_carry_a_span() {
        let v = votes(vec![
            (0, vec![(0, 10, Drug), (20, 30, Drug)]),
            (1, vec![(0, 10, Drug)]),
            (2, vec![(1, 10, Drug)]),
        ]);
        let merged = SpanClusterConsensus::default().vote(&v);
        assert_eq!(merged.spans, vec![Span::new(0, 10, Drug)]);
        let cat = &merged.explanation.categories[0];
        assert_eq!(cat.clusters.len(), 2);
        assert!(cat.clusters[1].support < 0.34);
    }

    #[test]
    fn documented_weight_cases() {
        // Only one model predicts a category: it weighs 0 and its spans are dropped.
        let v = votes(vec![(0, vec![(0, 5, Deferment)]), (1, vec![]), (2, vec![])]);
        let merged = SpanClusterConsensus::default().vote(&v);
        assert!(merged.spans.is_empty());
        let w = &merged.explanation.categories[0].weights;
        assert_eq!(
            w.iter().map(|x| x.weight).collect::<Vec<_>>(),
            vec![0.0, 0.5, 0.5]
        );
        // A lone model weighs 1 and keeps everything.
        let v = votes(vec![(3, vec![(0, 5, Deferment), (9, 12, Drug)])]);
        assert_eq!(SpanClusterConsensus::default().vote(&v).spans.len(), 2);
    }

    #[test]
    fn touching_spans_have_no_overlap_and_zero_threshold_links_everything() {
        assert_eq!(iou(&Span::new(0, 5, Drug), &Span::new(5, 9, Drug)), 0.0);
        let spans = [Span::new(0, 5, Drug), Span::new(50, 60, Drug)];
        assert_eq!(overlap_clusters(&spans, 0.0).len(), 1);
        assert_eq!(overlap_clusters(&spans, 0.1).len(), 2);
    }

    /// The reference's scan, verbatim: the oracle for the indexed clustering.
    fn naive_clusters(spans: &[Span], min_iou: f64) -> Vec<Vec<usize>> {
        let n = spans.len();
        let mut visited = vec![false; n];
        let mut clusters = Vec::new();
        for i in 0..n {
            if visited[i] {
                continue;
            }
            let (mut stack, mut members) = (vec![i], Vec::new());
            visited[i] = true;
            while let Some(cur) = stack.pop() {
                members.push(cur);
                for j in 0..n {
                    if !visited[j]
                        && spans[cur].category == spans[j].category
                        && iou(&spans[cur], &spans[j]) >= min_iou
                    {
                        visited[j] = true;
                        stack.push(j);
                    }
                }
            }
            clusters.push(members);
        }
        clusters
    }

    #[test]
    fn indexed_clustering_equals_the_reference_scan() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..300 {
            let spans: Vec<Span> = (0..rng.random_range(0..40))
                .map(|_| {
                    let s = rng.random_range(0..100);
                    let c = if rng.random_bool(0.8) {
                        Drug
                    } else {
                        Deferment
                    };
                    Span::new(s, s + rng.random_range(1..25), c)
                })
                .collect();
            for t in [0.0, 0.05, 0.1, 0.5, 1.0] {
                assert_eq!(
                    overlap_clusters(&spans, t),
                    naive_clusters(&spans, t),
                    "{t} {spans:?}"
                );
            }
        }
    }

    #[test]
    fn independent_boundaries() {
        let members = [
            (0, Span::new(0, 10, Drug)),
            (1, Span::new(2, 12, Drug)),
            (2, Span::new(0, 12, Drug)),
        ];
        let weights = [0.4, 0.35, 0.25]
            .iter()
            .enumerate()
            .map(|(m, &w)| ModelWeight {
                model: m,
                weight: w,
            })
            .collect::<Vec<_>>();
        assert_eq!(joint_vote(&members, &weights), (0, 10));
        assert_eq!(independent_vote(&members, &weights), (0, 12));
    }
}
