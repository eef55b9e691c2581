//! Nearest unlabeled notes of the MedDec documents, each unlabeled note given to at most one
//! document (`lamar-spec.md` §8.3), on the CPU. Embeddings are L2-normalised, so the cosine
//! similarity is the dot product.
//!
//! 1. [`top_candidates`]: for every query (MedDec document), the `candidates` most similar
//!    corpus rows, most similar first. The reference takes numpy's `argsort(sims)[-100:][::-1]`,
//!    whose order among equal scores is unspecified; lamar breaks ties by the lower corpus
//!    index, so the result is reproducible (and the GPU path can match it exactly).
//! 2. [`greedy_unique`]: every (query, candidate) pair, sorted by score, highest first, stably
//!    (equal scores keep query order, then candidate rank, as Python's stable sort leaves
//!    them); walking down the list, a pair is taken when its corpus row is unclaimed and its
//!    query has fewer than `k` rows; a taken row is claimed for good.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

/// A row-major matrix of embeddings, one row per note.
#[derive(Debug, Clone, Copy)]
pub struct Embeddings<'a> {
    /// `rows × dim` values.
    pub data: &'a [f32],
    /// Values per row.
    pub dim: usize,
}

impl<'a> Embeddings<'a> {
    /// The matrix of `data` with rows of `dim`; `None` when `data` is not whole rows.
    pub fn new(data: &'a [f32], dim: usize) -> Option<Embeddings<'a>> {
        (dim > 0 && data.len().is_multiple_of(dim)).then_some(Embeddings { data, dim })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Row `k`.
    pub fn row(&self, k: usize) -> &'a [f32] {
        &self.data[k * self.dim..(k + 1) * self.dim]
    }
}

/// A corpus row and its similarity to a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// The corpus row.
    pub index: usize,
    /// The dot product (cosine of normalised embeddings).
    pub score: f32,
}

/// The order of candidates: higher score first, then lower index.
fn better(a: &Neighbour, b: &Neighbour) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| a.index.cmp(&b.index))
}

/// A heap entry whose maximum is the worst kept candidate.
struct Worst(Neighbour);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        better(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        better(&self.0, &other.0)
    }
}

/// The dot product of two rows.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums over arrays of eight (`as_chunks`, so the compiler knows their length
    // and vectorises the loop); the rounding depends on nothing but the two rows.
    const LANES: usize = 8;
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    let mut lanes = [0f32; LANES];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..LANES {
            lanes[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// The best `capacity` candidates offered so far, in a heap whose top is the worst kept.
struct Best {
    heap: BinaryHeap<Worst>,
    capacity: usize,
}

impl Best {
    /// Room for `capacity` candidates out of `offers` (no more is reserved than can come).
    fn new(capacity: usize, offers: usize) -> Best {
        Best {
            heap: BinaryHeap::with_capacity(capacity.min(offers).saturating_add(1)),
            capacity,
        }
    }

    /// Offers a candidate. Offered in index order, equal scores keep the lower index.
    fn offer(&mut self, n: Neighbour) {
        if self.heap.len() < self.capacity {
            self.heap.push(Worst(n));
        } else if self
            .heap
            .peek()
            .is_some_and(|w| better(&n, &w.0) == Ordering::Less)
        {
            self.heap.pop();
            self.heap.push(Worst(n));
        }
    }

    /// The kept candidates, best first.
    fn into_sorted(self) -> Vec<Neighbour> {
        let mut out: Vec<Neighbour> = self.heap.into_iter().map(|w| w.0).collect();
        out.sort_by(better);
        out
    }
}

/// The `candidates` most similar corpus rows of one query, best first (ties: lower index).
pub fn query_candidates(query: &[f32], corpus: Embeddings, candidates: usize) -> Vec<Neighbour> {
    group_candidates(&[query], corpus, candidates)
        .pop()
        .unwrap_or_default()
}

/// Queries that [`top_candidates`] scores in one pass over the corpus: together they stay in the
/// processor's cache (64 rows of 2,560 values are 640 KiB) while the corpus streams past once,
/// where one query at a time reads the whole corpus from memory for each query.
pub const QUERY_GROUP: usize = 64;

/// [`query_candidates`] of every query row: the same lists, faster. Queries go in groups of
/// [`QUERY_GROUP`]; each corpus row, read once per group, is scored against the whole group
/// while it sits in the fastest cache. For every core, split the queries with [`query_groups`]
/// and call this on each part.
pub fn top_candidates(
    queries: Embeddings,
    corpus: Embeddings,
    candidates: usize,
) -> Vec<Vec<Neighbour>> {
    let mut out = Vec::with_capacity(queries.rows());
    for first in (0..queries.rows()).step_by(QUERY_GROUP) {
        let group: Vec<&[f32]> = (first..queries.rows().min(first + QUERY_GROUP))
            .map(|k| queries.row(k))
            .collect();
        out.extend(group_candidates(&group, corpus, candidates));
    }
    out
}

/// The queries split into groups of consecutive rows for `parts` workers (each group at most
/// [`QUERY_GROUP`] rows, at least two where there are two): [`top_candidates`] of each group,
/// concatenated in order, is [`top_candidates`] of all.
pub fn query_groups(queries: Embeddings<'_>, parts: usize) -> Vec<Embeddings<'_>> {
    let size = queries.rows().div_ceil(parts.max(1)).clamp(2, QUERY_GROUP);
    queries
        .data
        .chunks(size * queries.dim)
        .map(|data| Embeddings {
            data,
            dim: queries.dim,
        })
        .collect()
}

/// The candidates of a few queries, in one pass over the corpus.
fn group_candidates(
    group: &[&[f32]],
    corpus: Embeddings,
    candidates: usize,
) -> Vec<Vec<Neighbour>> {
    if candidates == 0 {
        return vec![Vec::new(); group.len()];
    }
    let mut best: Vec<Best> = group
        .iter()
        .map(|_| Best::new(candidates, corpus.rows()))
        .collect();
    for index in 0..corpus.rows() {
        let row = corpus.row(index);
        for (query, kept) in group.iter().zip(&mut best) {
            kept.offer(Neighbour {
                index,
                score: dot(query, row),
            });
        }
    }
    best.into_iter().map(Best::into_sorted).collect()
}

/// `rows` random unit rows of `dim` values from a fixed-seed xorshift generator: the same
/// matrix for the same arguments on every machine, for retrieval's benchmarks (which need no
/// data).
pub fn random_unit_rows(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data: Vec<f32> = (0..rows * dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    for row in data.chunks_mut(dim.max(1)) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    data
}

/// The reference's greedy unique assignment: per query, at most `k` corpus rows, each corpus
/// row to at most one query, best pairs first. Per query, its rows best first.
pub fn greedy_unique(candidates: &[Vec<Neighbour>], k: usize) -> Vec<Vec<Neighbour>> {
    let mut pairs: Vec<(usize, Neighbour)> = candidates
        .iter()
        .enumerate()
        .flat_map(|(q, list)| list.iter().map(move |&n| (q, n)))
        .collect();
    // Stable: equal scores stay in (query, rank) order.
    pairs.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    let mut claimed = HashSet::new();
    let mut assigned = vec![Vec::new(); candidates.len()];
    for (q, n) in pairs {
        if assigned[q].len() >= k || claimed.contains(&n.index) {
            continue;
        }
        claimed.insert(n.index);
        assigned[q].push(n);
    }
    assigned
}

/// One assignment (a line of `neighbours.jsonl`), as the reference's `top5_matches_*.csv`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatchRow {
    /// The query's split (the name of the file it came from).
    pub split: String,
    /// The query's index over all queries, in order.
    pub query_idx: usize,
    /// The query's document id.
    pub query_file_id: String,
    /// 1-based, by score within the query's assignments.
    pub rank: usize,
    /// The similarity, rounded to 4 decimals as the reference writes it.
    pub score: f64,
    /// The corpus row.
    pub ref_idx: usize,
    /// The corpus note's id.
    pub ref_file_id: String,
}

/// The assignments as rows: `queries` gives each query's split and id, `corpus` each corpus
/// row's id.
pub fn match_rows(
    queries: &[(String, String)],
    corpus: &[String],
    assigned: &[Vec<Neighbour>],
) -> Vec<MatchRow> {
    let mut rows = Vec::new();
    for (q, ((split, id), list)) in queries.iter().zip(assigned).enumerate() {
        for (rank, n) in list.iter().enumerate() {
            rows.push(MatchRow {
                split: split.clone(),
                query_idx: q,
                query_file_id: id.clone(),
                rank: rank + 1,
                score: format!("{:.4}", n.score).parse().unwrap_or(f64::NAN),
                ref_idx: n.index,
                ref_file_id: corpus[n.index].clone(),
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn normalised(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut data: Vec<f32> = (0..rows * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        for row in data.chunks_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        data
    }

    #[test]
    fn candidates_are_the_best_by_score_then_index() {
        let corpus = normalised(300, 16, 1);
        let queries = normalised(4, 16, 2);
        let (c, q) = (
            Embeddings::new(&corpus, 16).unwrap(),
            Embeddings::new(&queries, 16).unwrap(),
        );
        let got = top_candidates(q, c, 10);
        for (k, list) in got.iter().enumerate() {
            let mut all: Vec<Neighbour> = (0..300)
                .map(|i| Neighbour {
                    index: i,
                    score: dot(q.row(k), c.row(i)),
                })
                .collect();
            all.sort_by(better);
            assert_eq!(list, &all[..10]);
        }
    }

    #[test]
    fn grouped_scoring_gives_the_lists_and_bits_of_one_query_at_a_time() {
        // Odd query and corpus counts (the pairs' leftovers), dimensions with and without a
        // tail past the lanes, more queries than a group, more candidates than rows, and
        // repeated rows (ties across a pair of corpus rows and across pairs).
        for (queries, rows, dim, candidates) in [
            (5, 301, 19, 10),
            (67, 40, 16, 7),
            (1, 1, 3, 4),
            (2, 7, 8, 9),
            (130, 33, 5, 3),
        ] {
            let mut corpus = normalised(rows, dim, 3);
            for k in (1..rows).step_by(3) {
                let previous = corpus[(k - 1) * dim..k * dim].to_vec();
                corpus[k * dim..(k + 1) * dim].copy_from_slice(&previous);
            }
            let query_data = normalised(queries, dim, 4);
            let (c, q) = (
                Embeddings::new(&corpus, dim).unwrap(),
                Embeddings::new(&query_data, dim).unwrap(),
            );
            let one_by_one: Vec<_> = (0..queries)
                .map(|k| query_candidates(q.row(k), c, candidates))
                .collect();
            assert_eq!(
                top_candidates(q, c, candidates),
                one_by_one,
                "{queries} x {rows} x {dim}"
            );
            for parts in [1, 3, 16] {
                let grouped: Vec<_> = query_groups(q, parts)
                    .into_iter()
                    .flat_map(|g| top_candidates(g, c, candidates))
                    .collect();
                assert_eq!(grouped, one_by_one, "{parts} parts");
            }
        }
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        // Rows 0..6 are equal: the query scores them alike.
        let corpus: Vec<f32> = (0..6).flat_map(|_| [1.0f32, 0.0]).collect();
        let c = Embeddings::new(&corpus, 2).unwrap();
        let got = query_candidates(&[1.0, 0.0], c, 3);
        assert_eq!(got.iter().map(|n| n.index).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn greedy_assignment_follows_the_reference() {
        let n = |index, score| Neighbour { index, score };
        // Query 0 and 1 both want row 7 most; query 0's pair is better, so it takes it. Equal
        // scores (0.5) go in query order: query 0 claims row 3 before query 1 can.
        let candidates = vec![
            vec![n(7, 0.9), n(3, 0.5), n(4, 0.4)],
            vec![n(7, 0.8), n(3, 0.5), n(5, 0.45)],
        ];
        let got = greedy_unique(&candidates, 2);
        let ids = |q: usize| got[q].iter().map(|x| x.index).collect::<Vec<_>>();
        assert_eq!(ids(0), [7, 3]);
        assert_eq!(
            ids(1),
            [5],
            "row 7 and 3 were claimed; row 5 is its only one left"
        );
        // k = 1: query 1 gets its best unclaimed row.
        let one = greedy_unique(&candidates, 1);
        assert_eq!(one[1].iter().map(|x| x.index).collect::<Vec<_>>(), [3]);
    }
}
