//! A majority voter on clusters: a cluster is kept when more than half of the models present
//! for the document have a span in it (model weights are ignored), and it takes the boundary
//! most members share (ties: the shortest, then the first seen).

use lamar_plugin_sdk::voter::{Cluster, Decision, Guest, Info, Member, Thresholds, each_cluster};

struct MajorityVoter;

impl Guest for MajorityVoter {
    fn info() -> Info {
        Info {
            name: "majority-voter".into(),
            version: "1.0.0".into(),
            description: "Keeps clusters that more than half of the models voted for; the most \
                          common boundary wins."
                .into(),
        }
    }

    fn vote(
        _: Thresholds,
        clusters: Vec<Cluster>,
        members: Vec<Member>,
    ) -> Result<Vec<Decision>, String> {
        each_cluster(&clusters, &members, |cluster, own| {
            let mut models: Vec<u32> = own.iter().map(|m| m.model).collect();
            models.sort_unstable();
            models.dedup();
            let mut counts: Vec<((u32, u32), usize)> = Vec::new();
            for m in own {
                match counts.iter_mut().find(|(k, _)| *k == (m.start, m.end)) {
                    Some((_, n)) => *n += 1,
                    None => counts.push(((m.start, m.end), 1)),
                }
            }
            let mut best = counts[0];
            for &(k, n) in &counts[1..] {
                if n > best.1 || (n == best.1 && k.1 - k.0 < best.0.1 - best.0.0) {
                    best = (k, n);
                }
            }
            Decision {
                keep: 2 * models.len() > cluster.models as usize,
                start: best.0.0,
                end: best.0.1,
            }
        })
    }
}

lamar_plugin_sdk::voter::export_voter!(MajorityVoter);
