//! Step 4 of Span-Cluster Consensus: a cluster's boundary from its members' weighted votes,
//! jointly (LAMAR's rule) or with start and end voted apart (an older `mbr.py`'s switch).

use crate::ensemble::ModelWeight;
use crate::span::Span;

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
pub(super) fn joint_vote(members: &[(usize, Span)], weights: &[ModelWeight]) -> (usize, usize) {
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
pub(super) fn independent_vote(
    members: &[(usize, Span)],
    weights: &[ModelWeight],
) -> (usize, usize) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::Category::*;

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
