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

mod agreement;
mod boundary;
mod clusters;

pub use agreement::{model_weights, soft_f1};
pub(crate) use boundary::weight_of;
pub use clusters::overlap_clusters;

use super::{CategoryExplanation, ClusterRecord, Member, Merged, ModelWeight, Voter, Votes, iou};
use crate::category::Category;
use crate::span::Span;
use agreement::{AgreementScratch, weights_with};
use boundary::{independent_vote, joint_vote};
use clusters::{ClusterScratch, clusters_into};
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

/// Reusable buffers for one document's vote, so that no category or cluster allocates.
#[derive(Default)]
struct Scratch {
    agreement: AgreementScratch,
    clusters: ClusterScratch,
    /// The members of the cluster at hand, `(model, span)`.
    members: Vec<(usize, Span)>,
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

/// One document's spans grouped by category, then by model (in model order), then in file
/// order: a counting sort into one buffer.
struct Grouped {
    spans: Vec<Span>,
    /// Position (in `Votes::models`) of the model of each span.
    position: Vec<usize>,
    /// Category `c` (0-based), model position `k`: `spans[bounds[c*m + k]..bounds[c*m + k + 1]]`.
    bounds: Vec<usize>,
    models: usize,
}

impl Grouped {
    fn new(votes: &Votes) -> Grouped {
        let m = votes.models.len();
        let slot = |c: Category, k: usize| (usize::from(c.id()) - 1) * m + k;
        let mut bounds = vec![0; 9 * m + 1];
        for (k, (_, spans)) in votes.models.iter().enumerate() {
            for s in spans {
                bounds[slot(s.category, k) + 1] += 1;
            }
        }
        for i in 1..bounds.len() {
            bounds[i] += bounds[i - 1];
        }
        let total = bounds[9 * m];
        let mut cursor = bounds.clone();
        let mut grouped = vec![Span::new(0, 1, Category::Drug); total];
        let mut position = vec![0; total];
        for (k, (_, spans)) in votes.models.iter().enumerate() {
            for s in spans {
                let at = &mut cursor[slot(s.category, k)];
                grouped[*at] = *s;
                position[*at] = k;
                *at += 1;
            }
        }
        Grouped {
            spans: grouped,
            position,
            bounds,
            models: m,
        }
    }

    /// The pooled spans of category index `c` (models in order) and where they start.
    fn category(&self, c: usize) -> (usize, &[Span]) {
        let (a, b) = (
            self.bounds[c * self.models],
            self.bounds[(c + 1) * self.models],
        );
        (a, &self.spans[a..b])
    }

    /// Model position `k`'s spans of category index `c`.
    fn of_model(&self, c: usize, k: usize) -> &[Span] {
        let i = c * self.models + k;
        &self.spans[self.bounds[i]..self.bounds[i + 1]]
    }
}

/// Summed weight of the distinct model positions among `positions`, in ascending position order
/// (model order, as CPython iterates a set of small ints).
fn support_of(positions: impl Iterator<Item = usize>, weights: &[ModelWeight]) -> f64 {
    let mut present = [0u64; 4];
    let mut rest: Vec<usize> = Vec::new();
    for p in positions {
        match present.get_mut(p / 64) {
            Some(word) => *word |= 1 << (p % 64),
            None => rest.push(p),
        }
    }
    let mut support = 0.0;
    for (w, word) in present.iter().enumerate() {
        let mut bits = *word;
        while bits != 0 {
            support += weights[w * 64 + bits.trailing_zeros() as usize].weight;
            bits &= bits - 1;
        }
    }
    rest.sort_unstable();
    rest.dedup();
    for p in rest {
        support += weights[p].weight;
    }
    support
}

/// The pipeline shared by the cluster-based voters: per category, weight the models, cluster
/// the pooled spans (models in index order), sum each cluster's distinct-model support, let
/// `choose(category, members, weights, support)` pick its boundary, and keep the clusters
/// whose support reaches the threshold.
/// Returns the kept spans (not yet de-duplicated) and, unless `spans_only`, the explanation.
///
/// `votes.models` must be in ascending model order (as [`super::input`] builds them).
pub(crate) fn vote_by_clusters(
    votes: &Votes,
    p: &SccParams,
    spans_only: bool,
    mut choose: impl FnMut(Category, &[(usize, Span)], &[ModelWeight], f64) -> (usize, usize),
) -> (Vec<Span>, super::Explanation) {
    let mut kept = Vec::new();
    let mut explanation = super::Explanation::default();
    let grouped = Grouped::new(votes);
    // The buffers of the previous document on this thread (taken, so a re-entrant call starts
    // with empty ones).
    let mut scratch = SCRATCH.with(|s| s.take());
    let mut by_model: Vec<(usize, &[Span])> = Vec::with_capacity(votes.models.len());
    for (c, category) in Category::ALL.into_iter().enumerate() {
        let (offset, pooled) = grouped.category(c);
        if pooled.is_empty() {
            continue;
        }
        by_model.clear();
        by_model.extend((0..grouped.models).map(|k| (votes.models[k].0, grouped.of_model(c, k))));
        // Weights are in model-position order.
        let weights = weights_with(&by_model, p.min_pairwise_iou, &mut scratch.agreement);
        clusters_into(pooled, p.min_cluster_iou, &mut scratch.clusters);
        let mut records = Vec::new();
        for cluster in scratch.clusters.clusters.iter() {
            let members = &mut scratch.members;
            members.clear();
            members.extend(
                cluster
                    .iter()
                    .map(|&k| (votes.models[grouped.position[offset + k]].0, pooled[k])),
            );
            let support = support_of(
                cluster.iter().map(|&k| grouped.position[offset + k]),
                &weights,
            );
            let boundary = choose(category, members, &weights, support);
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
    SCRATCH.with(|s| s.replace(scratch));
    (kept, explanation)
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
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
            |_, members, weights, _| match self.boundary {
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
}
