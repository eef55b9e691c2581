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

/// Reusable buffers for one document's vote, so that no category or cluster allocates.
#[derive(Default)]
struct Scratch {
    /// Soft-F1 candidate pairs `(IoU, i, j)`.
    candidates: Vec<(f64, usize, usize)>,
    /// Soft-F1 of every ordered pair of models.
    agreement: Vec<f64>,
    used_a: Vec<bool>,
    used_b: Vec<bool>,
    clusters: Clusters,
    visited: Vec<bool>,
    stack: Vec<usize>,
    /// The spans linked to the one being visited.
    linked: Vec<usize>,
    /// Linked pairs `(i, j)`, both ways, sorted.
    pairs: Vec<(usize, usize)>,
    adjacency: Vec<usize>,
    by_start: Vec<usize>,
    /// The members of the cluster at hand, `(model, span)`.
    members: Vec<(usize, Span)>,
}

/// Clusters as one flat member list: cluster `k` is `members[ends[k - 1]..ends[k]]`.
#[derive(Default)]
struct Clusters {
    members: Vec<usize>,
    ends: Vec<usize>,
}

impl Clusters {
    fn iter(&self) -> impl Iterator<Item = &[usize]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.members[a..b])
    }
}

/// Greedy soft-F1 agreement of two span lists (the reference's `greedy_soft_match_score`).
pub fn soft_f1(a: &[Span], b: &[Span], min_iou: f64) -> f64 {
    soft_f1_both_ways(a, b, min_iou, &mut Scratch::default()).0
}

/// `(soft_f1(a, b), soft_f1(b, a))` from one set of IoUs. The two can differ: the greedy
/// matching takes equal scores in the order the reference generates them (outer list first).
fn soft_f1_both_ways(a: &[Span], b: &[Span], min_iou: f64, scratch: &mut Scratch) -> (f64, f64) {
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
    weights_with(&view, min_pairwise_iou, &mut Scratch::default())
}

fn weights_with(
    by_model: &[(usize, &[Span])],
    min_pairwise_iou: f64,
    scratch: &mut Scratch,
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

/// Connected components under IoU ≥ `min_iou` (spans of different categories never link), in
/// the reference's depth-first visiting order. Returns member indices into `spans`.
pub fn overlap_clusters(spans: &[Span], min_iou: f64) -> Vec<Vec<usize>> {
    let mut scratch = Scratch::default();
    clusters_into(spans, min_iou, &mut scratch);
    scratch.clusters.iter().map(<[usize]>::to_vec).collect()
}

/// Below this many spans the reference's plain scan beats sorting an index.
const SCAN_LIMIT: usize = 12;

fn clusters_into(spans: &[Span], min_iou: f64, scratch: &mut Scratch) {
    if spans.len() <= SCAN_LIMIT || min_iou <= 0.0 {
        scan_clusters(spans, min_iou, scratch);
    } else {
        indexed_clusters(spans, min_iou, scratch);
    }
}

/// Whether the visited span `c` links to `o`.
fn links(c: &Span, o: &Span, min_iou: f64) -> bool {
    c.category == o.category && iou(c, o) >= min_iou
}

/// The depth-first walk both searches share: clusters start at the lowest unvisited index;
/// `neighbours(cur, visited, out)` puts the spans linked to `cur` into `out` in ascending index
/// order (visited ones may be left out or not), and the unvisited ones are pushed in that order.
fn depth_first(
    n: usize,
    scratch: &mut Scratch,
    mut neighbours: impl FnMut(usize, &[bool], &mut Vec<usize>),
) {
    let Scratch {
        visited,
        stack,
        linked,
        clusters,
        ..
    } = scratch;
    visited.clear();
    visited.resize(n, false);
    clusters.members.clear();
    clusters.ends.clear();
    for i in 0..n {
        if visited[i] {
            continue;
        }
        visited[i] = true;
        stack.push(i);
        while let Some(cur) = stack.pop() {
            clusters.members.push(cur);
            linked.clear();
            neighbours(cur, visited, linked);
            for &j in linked.iter() {
                if !visited[j] {
                    visited[j] = true;
                    stack.push(j);
                }
            }
        }
        clusters.ends.push(clusters.members.len());
    }
}

/// The reference's search: for every span it visits, scan all spans for unvisited linked ones.
fn scan_clusters(spans: &[Span], min_iou: f64, scratch: &mut Scratch) {
    depth_first(spans.len(), scratch, |cur, visited, out| {
        out.extend(
            (0..spans.len()).filter(|&j| !visited[j] && links(&spans[cur], &spans[j], min_iou)),
        );
    });
}

/// The same walk for many spans. With a positive threshold only overlapping spans can link, so
/// the links are found once by a sweep over the spans sorted by start (each span meets only the
/// spans that start before it ends) and kept as ascending adjacency lists.
fn indexed_clusters(spans: &[Span], min_iou: f64, scratch: &mut Scratch) {
    let n = spans.len();
    let mut pairs = std::mem::take(&mut scratch.pairs);
    let mut adjacency = std::mem::take(&mut scratch.adjacency);
    let by_start = &mut scratch.by_start;
    by_start.clear();
    by_start.extend(0..n);
    by_start.sort_unstable_by_key(|&k| spans[k].start);
    pairs.clear();
    for (at, &i) in by_start.iter().enumerate() {
        for &j in &by_start[at + 1..] {
            if spans[j].start >= spans[i].end {
                break;
            }
            if links(&spans[i], &spans[j], min_iou) {
                pairs.push((i, j));
                pairs.push((j, i));
            }
        }
    }
    pairs.sort_unstable();
    // adjacency[k]..adjacency[k + 1]: span k's neighbours in `pairs`.
    adjacency.clear();
    adjacency.resize(n + 1, 0);
    for &(i, _) in pairs.iter() {
        adjacency[i + 1] += 1;
    }
    for k in 1..=n {
        adjacency[k] += adjacency[k - 1];
    }
    depth_first(n, scratch, |cur, _, out| {
        out.extend(
            pairs[adjacency[cur]..adjacency[cur + 1]]
                .iter()
                .map(|&(_, j)| j),
        );
    });
    scratch.pairs = pairs;
    scratch.adjacency = adjacency;
}

/// The weight of `model` (0 when it has none).
pub(crate) fn weight_of(weights: &[ModelWeight], model: usize) -> f64 {
    weights
        .iter()
        .find(|w| w.model == model)
        .map_or(0.0, |w| w.weight)
}

/// Sums `weight(x)` over the members with key `key(x) == k`, in member order.
fn summed_weight<K: PartialEq>(
    members: &[(usize, Span)],
    weights: &[ModelWeight],
    key: impl Fn(&Span) -> K,
    k: &K,
) -> f64 {
    let mut score = 0.0;
    for (model, s) in members {
        if key(s) == *k {
            score += weight_of(weights, *model);
        }
    }
    score
}

/// Whether `members[i]`'s key is the first occurrence of that key.
fn first_of_key<K: PartialEq>(
    members: &[(usize, Span)],
    i: usize,
    key: impl Fn(&Span) -> K,
) -> bool {
    let k = key(&members[i].1);
    members[..i].iter().all(|(_, s)| key(s) != k)
}

/// Joint boundary vote: highest summed weight, then shortest, then first seen.
fn joint_vote(members: &[(usize, Span)], weights: &[ModelWeight]) -> (usize, usize) {
    let pair = |s: &Span| (s.start, s.end);
    let mut best: Option<((usize, usize), f64)> = None;
    for (i, (_, s)) in members.iter().enumerate() {
        if !first_of_key(members, i, pair) {
            continue;
        }
        let k = pair(s);
        let score = summed_weight(members, weights, pair, &k);
        let better = match best {
            None => true,
            Some((bk, bs)) => score > bs || (score == bs && (k.1 - k.0) < (bk.1 - bk.0)),
        };
        if better {
            best = Some((k, score));
        }
    }
    best.map_or((0, 0), |(k, _)| k)
}

/// Independent vote of start and end (the older `mbr.py`'s `independent=True`).
fn independent_vote(members: &[(usize, Span)], weights: &[ModelWeight]) -> (usize, usize) {
    // Highest weight; ties go to the smallest start and the largest end.
    let vote = |key: fn(&Span) -> usize, prefer_larger: bool| {
        let mut best: Option<(usize, f64)> = None;
        for (i, (_, s)) in members.iter().enumerate() {
            if !first_of_key(members, i, key) {
                continue;
            }
            let k = key(s);
            let w = summed_weight(members, weights, key, &k);
            let better = match best {
                None => true,
                Some((bk, bw)) => {
                    w > bw || (w == bw && if prefer_larger { k > bk } else { k < bk })
                }
            };
            if better {
                best = Some((k, w));
            }
        }
        best.map_or(0, |(k, _)| k)
    };
    let (start, end) = (vote(|s| s.start, false), vote(|s| s.end, true));
    if end > start {
        (start, end)
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
        let weights = weights_with(&by_model, p.min_pairwise_iou, &mut scratch);
        clusters_into(pooled, p.min_cluster_iou, &mut scratch);
        let mut records = Vec::new();
        for cluster in scratch.clusters.iter() {
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
            let spans: Vec<Span> = (0..rng.random_range(0..120))
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
                let want = naive_clusters(&spans, t);
                assert_eq!(overlap_clusters(&spans, t), want, "{t} {spans:?}");
                if t > 0.0 {
                    let mut scratch = Scratch::default();
                    indexed_clusters(&spans, t, &mut scratch);
                    let got: Vec<Vec<usize>> =
                        scratch.clusters.iter().map(<[usize]>::to_vec).collect();
                    assert_eq!(got, want, "indexed {t} {spans:?}");
                }
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
