//! Merging several models' spans into one prediction per document.
//!
//! Every merging rule is a [`Voter`]: it receives one document's [`Votes`] (the spans of each
//! model that predicted on the document, validated as the reference validates them) and returns
//! [`Merged`] spans plus an [`Explanation`] a viewer can show (per category: model weights,
//! clusters with their members, support and chosen boundary).
//!
//! | voter | module | idea |
//! |---|---|---|
//! | Span-Cluster Consensus (LAMAR) | [`scc`] | weight models by agreement, cluster overlapping spans, keep well-supported clusters |
//! | majority, union, intersection | [`voters`] | votes on exact spans |
//! | weighted boundary fusion | [`voters`] | SCC clusters, boundaries averaged by weight and snapped to observed ones |
//!
//! [`input`] reads prediction files into per-document votes with the reference's rules;
//! [`registry`] makes the built-in voters by name; [`tune`] searches the consensus thresholds
//! (the sampler and the objective it maximises); [`decide`] exposes the consensus's clusters so
//! that something else (a plugin) can decide them.

pub mod decide;
pub mod input;
pub mod registry;
pub mod scc;
pub mod tune;
pub mod voters;

use crate::category::Category;
use crate::formats::predictions::PredictionFile;
use crate::span::Span;
use serde::{Deserialize, Serialize};

/// One document's predictions from several models.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Votes {
    /// `(model index, its valid spans in file order)` for every model that has an entry for the
    /// document (possibly with no spans), by ascending model index. Models without an entry
    /// are absent and get no weight.
    pub models: Vec<(usize, Vec<Span>)>,
}

impl Votes {
    /// The spans of category `c` per model, in model order (models without such spans keep an
    /// empty list).
    pub fn of_category(&self, c: Category) -> Vec<(usize, Vec<Span>)> {
        self.models
            .iter()
            .map(|(m, spans)| {
                (
                    *m,
                    spans.iter().copied().filter(|s| s.category == c).collect(),
                )
            })
            .collect()
    }

    /// [`Votes::of_category`] for all nine categories in one pass (index = category id − 1).
    pub fn by_category(&self) -> Vec<Vec<(usize, Vec<Span>)>> {
        let mut out: Vec<Vec<(usize, Vec<Span>)>> = (0..9)
            .map(|_| self.models.iter().map(|(m, _)| (*m, Vec::new())).collect())
            .collect();
        for (k, (_, spans)) in self.models.iter().enumerate() {
            for s in spans {
                out[usize::from(s.category.id()) - 1][k].1.push(*s);
            }
        }
        out
    }
}

/// A model's weight for one category of one document.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelWeight {
    /// Model index (position of its file on the command line).
    pub model: usize,
    /// Weight; the weights of a category sum to 1.
    pub weight: f64,
}

/// One member of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Model index.
    pub model: usize,
    /// Start offset.
    pub start: usize,
    /// End offset.
    pub end: usize,
}

/// A cluster of overlapping same-category spans and what the voter made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// Members in the order the clustering visited them.
    pub members: Vec<Member>,
    /// Summed weight of the distinct models in the cluster.
    pub support: f64,
    /// The boundary the vote chose `(start, end)`.
    pub boundary: (usize, usize),
    /// Whether the support reached the threshold (before de-duplication).
    pub kept: bool,
}

/// Everything about one category of one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryExplanation {
    /// The category.
    pub category: Category,
    /// Model weights, by model index.
    pub weights: Vec<ModelWeight>,
    /// Clusters, in the order they were found.
    pub clusters: Vec<ClusterRecord>,
}

/// How a voter reached its result for one document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Explanation {
    /// Categories that had at least one span, in id order.
    pub categories: Vec<CategoryExplanation>,
}

/// A voter's result for one document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Merged {
    /// Merged spans, sorted by `(start, end, category)`, without duplicates.
    pub spans: Vec<Span>,
    /// Why.
    pub explanation: Explanation,
}

/// A rule that merges several models' spans.
pub trait Voter: Send + Sync {
    /// Short name (`scc`, `majority`, …).
    fn name(&self) -> &'static str;
    /// Merges one document's votes.
    fn vote(&self, votes: &Votes) -> Merged;
}

/// Character-level IoU of two spans; spans that only touch have IoU 0.
pub fn iou(a: &Span, b: &Span) -> f64 {
    let inter = a.end.min(b.end) as i64 - a.start.max(b.start) as i64;
    if inter <= 0 {
        return 0.0;
    }
    let union = a.end.max(b.end) - a.start.min(b.start);
    inter as f64 / union as f64
}

/// Sorts by `(start, end, category)` and removes exact duplicates.
pub(crate) fn sort_dedup(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.start, s.end, s.category));
    spans.dedup();
    spans
}

/// Runs a voter over every document of a set of models' predictions. Documents come out sorted
/// by name, as the reference writes them.
pub fn merge_all(votes: &input::VotesByDocument, voter: &dyn Voter) -> Vec<(String, Merged)> {
    votes
        .iter()
        .map(|(name, v)| (name.clone(), voter.vote(v)))
        .collect()
}

/// Every document's merged spans as the entries of a predictions file.
pub fn prediction_files(merged: &[(String, Merged)]) -> Vec<PredictionFile> {
    merged
        .iter()
        .map(|(name, m)| PredictionFile::from_spans(name.clone(), &m.spans))
        .collect()
}

/// Every document's explanation (model weights, clusters), keyed by document, as pretty JSON
/// (what `lamar ensemble --explain` writes).
pub fn explanations_json(merged: &[(String, Merged)]) -> Result<String, serde_json::Error> {
    let by_document = merged
        .iter()
        .map(|(name, m)| Ok((name.clone(), serde_json::to_value(&m.explanation)?)))
        .collect::<Result<serde_json::Map<_, _>, serde_json::Error>>()?;
    serde_json::to_string_pretty(&by_document)
}
