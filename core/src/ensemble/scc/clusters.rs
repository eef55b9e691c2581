//! Step 2 of Span-Cluster Consensus: the pooled spans of a category as connected components
//! under IoU ≥ `min_cluster_iou`, in the reference's depth-first visiting order (which decides
//! ties later). Small inputs take the reference's all-pairs scan; larger ones find the links
//! once by a sweep over the spans sorted by start, with the same visiting order.

use crate::ensemble::iou;
use crate::span::Span;

/// Clusters as one flat member list: cluster `k` is `members[ends[k - 1]..ends[k]]`.
#[derive(Default)]
pub(super) struct Clusters {
    members: Vec<usize>,
    ends: Vec<usize>,
}

impl Clusters {
    /// Each cluster's member indices, in visiting order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &[usize]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.members[a..b])
    }
}

/// Reusable buffers of the clustering; `clusters` holds the last result.
#[derive(Default)]
pub(super) struct ClusterScratch {
    pub(super) clusters: Clusters,
    visited: Vec<bool>,
    stack: Vec<usize>,
    /// The spans linked to the one being visited.
    linked: Vec<usize>,
    /// Linked pairs `(i, j)`, both ways, sorted.
    pairs: Vec<(usize, usize)>,
    adjacency: Vec<usize>,
    by_start: Vec<usize>,
}

/// Connected components under IoU ≥ `min_iou` (spans of different categories never link), in
/// the reference's depth-first visiting order. Returns member indices into `spans`.
pub fn overlap_clusters(spans: &[Span], min_iou: f64) -> Vec<Vec<usize>> {
    let mut scratch = ClusterScratch::default();
    clusters_into(spans, min_iou, &mut scratch);
    scratch.clusters.iter().map(<[usize]>::to_vec).collect()
}

/// Below this many spans the reference's plain scan beats sorting an index.
const SCAN_LIMIT: usize = 12;

pub(super) fn clusters_into(spans: &[Span], min_iou: f64, scratch: &mut ClusterScratch) {
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
    scratch: &mut ClusterScratch,
    mut neighbours: impl FnMut(usize, &[bool], &mut Vec<usize>),
) {
    let ClusterScratch {
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
fn scan_clusters(spans: &[Span], min_iou: f64, scratch: &mut ClusterScratch) {
    depth_first(spans.len(), scratch, |cur, visited, out| {
        out.extend(
            (0..spans.len()).filter(|&j| !visited[j] && links(&spans[cur], &spans[j], min_iou)),
        );
    });
}

/// The same walk for many spans. With a positive threshold only overlapping spans can link, so
/// the links are found once by a sweep over the spans sorted by start (each span meets only the
/// spans that start before it ends) and kept as ascending adjacency lists.
fn indexed_clusters(spans: &[Span], min_iou: f64, scratch: &mut ClusterScratch) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;

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
                    let mut scratch = ClusterScratch::default();
                    indexed_clusters(&spans, t, &mut scratch);
                    let got: Vec<Vec<usize>> =
                        scratch.clusters.iter().map(<[usize]>::to_vec).collect();
                    assert_eq!(got, want, "indexed {t} {spans:?}");
                }
            }
        }
    }
}
