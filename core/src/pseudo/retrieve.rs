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
    // Eight partial sums: the compiler vectorises this, and the rounding does not depend on
    // anything but the two rows.
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// The `candidates` most similar corpus rows of one query, best first (ties: lower index).
pub fn query_candidates(query: &[f32], corpus: Embeddings, candidates: usize) -> Vec<Neighbour> {
    let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(candidates + 1);
    if candidates == 0 {
        return Vec::new();
    }
    for index in 0..corpus.rows() {
        let n = Neighbour {
            index,
            score: dot(query, corpus.row(index)),
        };
        if heap.len() < candidates {
            heap.push(Worst(n));
        } else if heap
            .peek()
            .is_some_and(|w| better(&n, &w.0) == Ordering::Less)
        {
            heap.pop();
            heap.push(Worst(n));
        }
    }
    let mut out: Vec<Neighbour> = heap.into_iter().map(|w| w.0).collect();
    out.sort_by(better);
    out
}

/// [`query_candidates`] of every query row.
pub fn top_candidates(
    queries: Embeddings,
    corpus: Embeddings,
    candidates: usize,
) -> Vec<Vec<Neighbour>> {
    (0..queries.rows())
        .map(|q| query_candidates(queries.row(q), corpus, candidates))
        .collect()
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
