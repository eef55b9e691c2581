//! Property tests of the ensemble voters.

use lamar_core::ensemble::scc::{BoundaryVote, SccParams, SpanClusterConsensus, model_weights};
use lamar_core::ensemble::voters::{Intersection, Majority, Union, WeightedBoundaryFusion};
use lamar_core::ensemble::{Voter, Votes};
use lamar_core::{Category, Span};
use proptest::prelude::*;

fn span() -> impl Strategy<Value = Span> {
    (
        0usize..120,
        1usize..30,
        prop::sample::select(vec![
            Category::Drug,
            Category::DefiningProblem,
            Category::Deferment,
        ]),
    )
        .prop_map(|(s, l, c)| Span::new(s, s + l, c))
}

fn votes() -> impl Strategy<Value = Votes> {
    prop::collection::vec(prop::collection::vec(span(), 0..12), 1..5).prop_map(|models| Votes {
        models: models.into_iter().enumerate().collect(),
    })
}

fn params() -> impl Strategy<Value = SccParams> {
    (0.0..=1.0f64, 0.0..=1.0f64, 0.0..=1.0f64, 0.0..=1.0f64).prop_map(|(a, b, c, d)| SccParams {
        min_cluster_iou: a,
        min_pairwise_iou: b,
        min_cluster_support: c,
        min_iou_same_cat: d,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Every output span is an observed span of its category (the boundary vote only picks
    /// observed boundaries), and the output is sorted without duplicates.
    #[test]
    fn outputs_are_observed_sorted_and_unique(v in votes(), p in params()) {
        let observed: Vec<Span> = v.models.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        let merged = SpanClusterConsensus { params: p, boundary: BoundaryVote::Joint, spans_only: false }.vote(&v);
        for s in &merged.spans {
            prop_assert!(observed.contains(s), "{s} was never predicted");
        }
        let mut sorted = merged.spans.clone();
        sorted.sort_by_key(|s| (s.start, s.end, s.category));
        sorted.dedup();
        prop_assert_eq!(&sorted, &merged.spans);
        for voter in [&Majority as &dyn Voter, &Union, &Intersection, &WeightedBoundaryFusion { params: p }] {
            let out = voter.vote(&v).spans;
            let mut sorted = out.clone();
            sorted.sort_by_key(|s| (s.start, s.end, s.category));
            sorted.dedup();
            prop_assert_eq!(sorted, out, "{}", voter.name());
        }
    }

    /// Relabelling whole models only relabels their weights.
    #[test]
    fn permuting_models_permutes_weights(v in votes(), t in 0.0..=1.0f64, shift in 0usize..4) {
        let n = v.models.len();
        let permuted = Votes {
            models: {
                let mut m: Vec<(usize, Vec<Span>)> = v.models.iter().map(|(i, s)| ((i + shift) % n, s.clone())).collect();
                m.sort_by_key(|(i, _)| *i);
                m
            },
        };
        for c in Category::ALL {
            let a = model_weights(&v.of_category(c), t);
            let b = model_weights(&permuted.of_category(c), t);
            for w in &a {
                let moved = b.iter().find(|x| x.model == (w.model + shift) % n).unwrap();
                prop_assert!((moved.weight - w.weight).abs() < 1e-12, "{} vs {}", moved.weight, w.weight);
            }
            let total: f64 = a.iter().map(|w| w.weight).sum();
            prop_assert!((total - 1.0).abs() < 1e-9);
        }
    }

    /// Union contains every other voter's output; intersection is inside majority.
    #[test]
    fn voter_inclusions(v in votes()) {
        let union = Union.vote(&v).spans;
        let majority = Majority.vote(&v).spans;
        for s in Intersection.vote(&v).spans {
            prop_assert!(majority.contains(&s) || v.models.is_empty());
        }
        for s in majority.iter().chain(&SpanClusterConsensus::default().vote(&v).spans) {
            prop_assert!(union.contains(s));
        }
    }
}
