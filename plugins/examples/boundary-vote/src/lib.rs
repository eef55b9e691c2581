//! The boundary vote of Span-Cluster Consensus as a plugin: a re-implementation, from the
//! description in `lamar_core::ensemble::scc`, of what lamar does natively. Run with the same
//! thresholds it gives the same spans as `lamar ensemble --voter scc` (lamar's tests check it).
//!
//! * support = summed weight of the distinct models in the cluster, in ascending model order;
//!   the cluster is kept when it reaches `min-cluster-support`;
//! * boundary = the observed `(start, end)` with the highest summed weight, then the shortest,
//!   then the first seen.

use lamar_plugin_sdk::voter::{Cluster, Decision, Guest, Info, Member, Thresholds, each_cluster};

struct BoundaryVote;

/// Summed weight of the distinct models among `members`, in ascending model order (`models`
/// is a reusable buffer).
fn support(members: &[Member], models: &mut Vec<(u32, f64)>) -> f64 {
    models.clear();
    models.extend(members.iter().map(|m| (m.model, m.weight)));
    models.sort_by_key(|&(model, _)| model);
    models.dedup_by_key(|&mut (model, _)| model);
    let mut total = 0.0;
    for &(_, weight) in models.iter() {
        total += weight;
    }
    total
}

/// Highest summed weight, then shortest, then first seen (`scores` is a reusable buffer).
fn boundary(members: &[Member], scores: &mut Vec<((u32, u32), f64)>) -> (u32, u32) {
    scores.clear();
    for m in members {
        match scores.iter_mut().find(|(k, _)| *k == (m.start, m.end)) {
            Some((_, score)) => *score += m.weight,
            None => scores.push(((m.start, m.end), m.weight)),
        }
    }
    let mut best = scores[0];
    for &(k, score) in &scores[1..] {
        if score > best.1 || (score == best.1 && k.1 - k.0 < best.0.1 - best.0.0) {
            best = (k, score);
        }
    }
    best.0
}

impl Guest for BoundaryVote {
    fn info() -> Info {
        Info {
            name: "boundary-vote".into(),
            version: "1.0.0".into(),
            description: "Span-Cluster Consensus's support threshold and joint boundary vote, \
                          re-implemented as a plugin."
                .into(),
        }
    }

    fn vote(
        thresholds: Thresholds,
        clusters: Vec<Cluster>,
        members: Vec<Member>,
    ) -> Result<Vec<Decision>, String> {
        let (mut models, mut scores) = (Vec::new(), Vec::new());
        each_cluster(&clusters, &members, |_, own| {
            let (start, end) = boundary(own, &mut scores);
            Decision {
                keep: support(own, &mut models) >= thresholds.min_cluster_support,
                start,
                end,
            }
        })
    }
}

lamar_plugin_sdk::voter::export_voter!(BoundaryVote);
