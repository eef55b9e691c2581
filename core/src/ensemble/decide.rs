//! Span-Cluster Consensus with the decisions made elsewhere (a plugin, a user interface):
//! [`document_clusters`] gives a document's model weights and clusters as the consensus finds
//! them, undecided; [`apply_decisions`] takes one [`Decision`] per cluster (keep it? which
//! boundary?) and finishes as the consensus does (de-duplication, sorting).
//!
//! With the consensus's own decisions (support ≥ `min_cluster_support`, the joint boundary
//! vote) the result equals [`super::scc::SpanClusterConsensus`].

use super::scc::{SccParams, dedup, vote_by_clusters, weight_of};
use super::{Explanation, Merged, ModelWeight};
use crate::category::Category;
use crate::span::Span;
use thiserror::Error;

/// What to do with one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Keep the cluster's span.
    pub keep: bool,
    /// Boundary of the kept span, `start < end`.
    pub start: usize,
    /// End of the kept span.
    pub end: usize,
}

/// Decisions that do not fit the clusters.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecisionError {
    /// Not one decision per cluster.
    #[error("expected {expected} decisions (one per cluster), got {got}")]
    Count {
        /// Clusters.
        expected: usize,
        /// Decisions.
        got: usize,
    },
    /// A kept span must not be empty or reversed.
    #[error("decision {index} keeps an empty or reversed span {start}..{end}")]
    EmptySpan {
        /// Position of the decision.
        index: usize,
        /// Its start.
        start: usize,
        /// Its end.
        end: usize,
    },
}

/// The document's model weights and clusters per category, as Span-Cluster Consensus computes
/// them, with every cluster undecided (`kept: false`, `boundary: (0, 0)`). Clusters are in the
/// order [`apply_decisions`] expects: categories in id order, clusters in discovery order.
pub fn document_clusters(votes: &super::Votes, params: &SccParams) -> Explanation {
    let first_member =
        |_, members: &[(usize, Span)], _: &[_], _| (members[0].1.start, members[0].1.end);
    let (_, mut explanation) = vote_by_clusters(votes, params, false, first_member);
    for record in explanation
        .categories
        .iter_mut()
        .flat_map(|c| c.clusters.iter_mut())
    {
        record.kept = false;
        record.boundary = (0, 0);
    }
    explanation
}

/// One cluster in flat form: its members are `members[first..first + count]` of the
/// [`FlatClusters`] it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlatCluster {
    /// Its category.
    pub category: Category,
    /// Summed weight of its distinct models.
    pub support: f64,
    /// First member.
    pub first: usize,
    /// Number of members.
    pub count: usize,
}

/// One member of a flat cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlatMember {
    /// Model index.
    pub model: usize,
    /// The model's weight for the category.
    pub weight: f64,
    /// The span.
    pub span: Span,
}

/// The clusters of any number of documents in two flat lists (no allocation per cluster): what
/// a plugin call carries when no explanation is wanted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlatClusters {
    /// Clusters, document after document, in [`document_clusters`] order.
    pub clusters: Vec<FlatCluster>,
    /// Their members.
    pub members: Vec<FlatMember>,
}

impl FlatClusters {
    /// Appends a document's clusters; returns how many it has.
    pub fn push_document(&mut self, votes: &super::Votes, params: &SccParams) -> usize {
        let before = self.clusters.len();
        let record = |category, members: &[(usize, Span)], weights: &[ModelWeight], support| {
            self.clusters.push(FlatCluster {
                category,
                support,
                first: self.members.len(),
                count: members.len(),
            });
            for &(model, span) in members {
                self.members.push(FlatMember {
                    model,
                    weight: weight_of(weights, model),
                    span,
                });
            }
            (members[0].1.start, members[0].1.end)
        };
        vote_by_clusters(votes, params, true, record);
        self.clusters.len() - before
    }

    /// Appends the clusters of an explanation made by [`document_clusters`] (same order, same
    /// weights and support) without clustering again; returns how many it has.
    pub fn push_explanation(&mut self, explanation: &Explanation) -> usize {
        let before = self.clusters.len();
        for category in &explanation.categories {
            for record in &category.clusters {
                self.clusters.push(FlatCluster {
                    category: category.category,
                    support: record.support,
                    first: self.members.len(),
                    count: record.members.len(),
                });
                for m in &record.members {
                    self.members.push(FlatMember {
                        model: m.model,
                        weight: weight_of(&category.weights, m.model),
                        span: Span::new(m.start, m.end, category.category),
                    });
                }
            }
        }
        self.clusters.len() - before
    }
}

/// The spans one document's decisions keep (`clusters` are its flat clusters, in order),
/// de-duplicated and sorted as the consensus does.
pub fn apply_flat_decisions(
    clusters: &[FlatCluster],
    decisions: &[Decision],
    min_iou_same_cat: f64,
) -> Result<Vec<Span>, DecisionError> {
    if decisions.len() != clusters.len() {
        return Err(DecisionError::Count {
            expected: clusters.len(),
            got: decisions.len(),
        });
    }
    let mut kept = Vec::new();
    for (index, (c, d)) in clusters.iter().zip(decisions).enumerate() {
        if !d.keep {
            continue;
        }
        if d.start >= d.end {
            return Err(DecisionError::EmptySpan {
                index,
                start: d.start,
                end: d.end,
            });
        }
        kept.push(Span::new(d.start, d.end, c.category));
    }
    let mut spans = dedup(kept, min_iou_same_cat);
    spans.sort_by_key(|s| (s.start, s.end, s.category));
    Ok(spans)
}

/// Number of clusters in an explanation.
pub fn cluster_count(explanation: &Explanation) -> usize {
    explanation
        .categories
        .iter()
        .map(|c| c.clusters.len())
        .sum()
}

/// Applies one decision per cluster (in [`document_clusters`] order): kept spans are
/// de-duplicated with `min_iou_same_cat` and sorted as the consensus does; the explanation
/// records each decision.
pub fn apply_decisions(
    mut explanation: Explanation,
    decisions: &[Decision],
    min_iou_same_cat: f64,
) -> Result<Merged, DecisionError> {
    let expected = cluster_count(&explanation);
    if decisions.len() != expected {
        return Err(DecisionError::Count {
            expected,
            got: decisions.len(),
        });
    }
    let mut kept = Vec::new();
    let mut next = decisions.iter().enumerate();
    for category in &mut explanation.categories {
        for (record, (index, d)) in category.clusters.iter_mut().zip(next.by_ref()) {
            if d.keep && d.start >= d.end {
                return Err(DecisionError::EmptySpan {
                    index,
                    start: d.start,
                    end: d.end,
                });
            }
            record.kept = d.keep;
            record.boundary = (d.start, d.end);
            if d.keep {
                kept.push(Span::new(d.start, d.end, category.category));
            }
        }
    }
    let mut spans = dedup(kept, min_iou_same_cat);
    spans.sort_by_key(|s| (s.start, s.end, s.category));
    Ok(Merged { spans, explanation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ensemble::Voter;
    use crate::ensemble::scc::SpanClusterConsensus;
    use crate::synth::{NoiseRates, SynthConfig, generate, simulate};

    #[test]
    fn the_consensus_decisions_give_the_consensus() {
        let corpus = generate(&SynthConfig { docs: 20, seed: 3 });
        let models: Vec<_> = (0..3)
            .map(|k| simulate(&corpus, k, &NoiseRates::default(), 3).predictions)
            .collect();
        let scc = SpanClusterConsensus::default();
        for (d, file) in models[0].iter().enumerate() {
            let votes = crate::ensemble::Votes {
                models: models
                    .iter()
                    .enumerate()
                    .map(|(k, m)| (k, m[d].spans(None).0))
                    .collect(),
            };
            let native = scc.vote(&votes);
            let clusters = document_clusters(&votes, &scc.params);
            // The consensus's own decisions, read back from its explanation.
            let decisions: Vec<Decision> = native
                .explanation
                .categories
                .iter()
                .flat_map(|c| &c.clusters)
                .map(|r| Decision {
                    keep: r.kept,
                    start: r.boundary.0,
                    end: r.boundary.1,
                })
                .collect();
            let merged = apply_decisions(clusters, &decisions, scc.params.min_iou_same_cat)
                .unwrap_or_else(|e| panic!("{}: {e}", file.file_name));
            assert_eq!(merged, native, "{}", file.file_name);
            let mut flat = FlatClusters::default();
            assert_eq!(flat.push_document(&votes, &scc.params), decisions.len());
            let mut from_explanation = FlatClusters::default();
            from_explanation.push_explanation(&document_clusters(&votes, &scc.params));
            assert_eq!(from_explanation, flat, "{}", file.file_name);
            let spans =
                apply_flat_decisions(&flat.clusters, &decisions, scc.params.min_iou_same_cat)
                    .unwrap();
            assert_eq!(spans, native.spans, "{}", file.file_name);
        }
    }

    #[test]
    fn bad_decisions_are_refused() {
        let votes = crate::ensemble::Votes {
            models: vec![(0, vec![Span::new(0, 4, crate::Category::Drug)])],
        };
        let clusters = document_clusters(&votes, &SccParams::default());
        assert_eq!(cluster_count(&clusters), 1);
        assert_eq!(
            apply_decisions(clusters.clone(), &[], 0.8),
            Err(DecisionError::Count {
                expected: 1,
                got: 0
            })
        );
        let reversed = Decision {
            keep: true,
            start: 4,
            end: 4,
        };
        assert!(matches!(
            apply_decisions(clusters, &[reversed], 0.8),
            Err(DecisionError::EmptySpan { index: 0, .. })
        ));
    }
}
