//! Simple voters, for comparison with Span-Cluster Consensus.

use super::scc::{SccParams, vote_by_clusters, weight_of};
use super::{Merged, ModelWeight, Voter, Votes, sort_dedup};
use crate::span::Span;
use std::collections::BTreeMap;

/// How many distinct models predicted each exact span.
fn exact_counts(votes: &Votes) -> BTreeMap<Span, usize> {
    let mut counts = BTreeMap::new();
    for (_, spans) in &votes.models {
        let mut own: Vec<Span> = spans.clone();
        own.sort();
        own.dedup();
        for s in own {
            *counts.entry(s).or_insert(0) += 1;
        }
    }
    counts
}

/// The exact spans whose number of voting models satisfies `enough(count, models present)`.
fn spans_voted_by(votes: &Votes, enough: impl Fn(usize, usize) -> bool) -> Merged {
    let n = votes.models.len();
    let spans = exact_counts(votes)
        .into_iter()
        .filter(|&(_, c)| enough(c, n))
        .map(|(s, _)| s)
        .collect();
    Merged {
        spans: sort_dedup(spans),
        ..Merged::default()
    }
}

/// Exact spans predicted by more than half of the models present for the document.
#[derive(Debug, Clone, Copy, Default)]
pub struct Majority;

impl Voter for Majority {
    fn name(&self) -> &'static str {
        "majority"
    }
    fn vote(&self, votes: &Votes) -> Merged {
        spans_voted_by(votes, |count, models| 2 * count > models)
    }
}

/// Every span any model predicted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Union;

impl Voter for Union {
    fn name(&self) -> &'static str {
        "union"
    }
    fn vote(&self, votes: &Votes) -> Merged {
        let spans = votes
            .models
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .collect();
        Merged {
            spans: sort_dedup(spans),
            ..Merged::default()
        }
    }
}

/// Exact spans every present model predicted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Intersection;

impl Voter for Intersection {
    fn name(&self) -> &'static str {
        "intersection"
    }
    fn vote(&self, votes: &Votes) -> Merged {
        spans_voted_by(votes, |count, models| count == models && models > 0)
    }
}

/// One-dimensional weighted boxes fusion: the clusters and model weights of Span-Cluster
/// Consensus, but each kept cluster's start (end) is the weight-averaged start (end) of its
/// members, snapped to the nearest observed start (end); ties snap to the smaller start and the
/// larger end. If the snapped end would not follow the snapped start, the widest member wins.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeightedBoundaryFusion {
    /// Cluster, weight and support thresholds (shared with SCC; `min_iou_same_cat` unused).
    pub params: SccParams,
}

fn snap(target: f64, observed: impl Iterator<Item = usize>, prefer_larger: bool) -> usize {
    let mut best: Option<(f64, usize)> = None;
    for o in observed {
        let d = (o as f64 - target).abs();
        let better = match best {
            None => true,
            Some((bd, bo)) => d < bd || (d == bd && if prefer_larger { o > bo } else { o < bo }),
        };
        if better {
            best = Some((d, o));
        }
    }
    best.map_or(0, |(_, o)| o)
}

impl Voter for WeightedBoundaryFusion {
    fn name(&self) -> &'static str {
        "wbf"
    }
    fn vote(&self, votes: &Votes) -> Merged {
        let (kept, explanation) =
            vote_by_clusters(votes, &self.params, false, |_, members, weights, _| {
                fused_boundary(members, weights)
            });
        Merged {
            spans: sort_dedup(kept),
            explanation,
        }
    }
}

/// Weight-averaged start and end of a cluster, snapped to observed ones; the widest member when
/// the snapped end would not follow the snapped start.
fn fused_boundary(members: &[(usize, Span)], weights: &[ModelWeight]) -> (usize, usize) {
    let total: f64 = members.iter().map(|(m, _)| weight_of(weights, *m)).sum();
    let mean = |f: fn(&Span) -> usize| -> f64 {
        if total > 0.0 {
            members
                .iter()
                .map(|(m, s)| weight_of(weights, *m) * f(s) as f64)
                .sum::<f64>()
                / total
        } else {
            members.iter().map(|(_, s)| f(s) as f64).sum::<f64>() / members.len() as f64
        }
    };
    let start = snap(
        mean(|s| s.start),
        members.iter().map(|(_, s)| s.start),
        false,
    );
    let end = snap(mean(|s| s.end), members.iter().map(|(_, s)| s.end), true);
    if end > start {
        return (start, end);
    }
    let widest = members
        .iter()
        .map(|(_, s)| *s)
        .max_by_key(|s| (s.len(), std::cmp::Reverse(s.start)))
        .unwrap_or(members[0].1);
    (widest.start, widest.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;

    fn votes() -> Votes {
        let s = |a, b| Span::new(a, b, Drug);
        Votes {
            models: vec![
                (0, vec![s(0, 10), s(20, 30)]),
                (1, vec![s(0, 10), s(40, 50)]),
                (2, vec![s(2, 10), s(20, 30)]),
            ],
        }
    }

    #[test]
    fn exact_voters() {
        let s = |a, b| Span::new(a, b, Drug);
        assert_eq!(Majority.vote(&votes()).spans, vec![s(0, 10), s(20, 30)]);
        assert_eq!(Intersection.vote(&votes()).spans, vec![]);
        assert_eq!(Union.vote(&votes()).spans.len(), 4);
    }

    #[test]
    fn fusion_snaps_to_observed_boundaries() {
        let merged = WeightedBoundaryFusion::default().vote(&votes());
        for span in &merged.spans {
            let observed = votes()
                .models
                .iter()
                .any(|(_, v)| v.iter().any(|o| o.start == span.start))
                && votes()
                    .models
                    .iter()
                    .any(|(_, v)| v.iter().any(|o| o.end == span.end));
            assert!(observed, "{span}");
        }
        assert!(merged.spans.iter().any(|s| s.end == 10));
        assert_eq!(snap(4.6, [0usize, 2, 10].into_iter(), false), 2);
        assert_eq!(snap(5.0, [4usize, 6].into_iter(), true), 6);
        assert_eq!(snap(5.0, [4usize, 6].into_iter(), false), 4);
    }
}
