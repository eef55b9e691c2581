//! Property tests of the ensemble voters.

use lamar_core::ensemble::scc::{BoundaryVote, SccParams, SpanClusterConsensus, model_weights};
use lamar_core::ensemble::voters::{Intersection, Majority, Union, WeightedBoundaryFusion};
use lamar_core::ensemble::{Voter, Votes};
use lamar_core::{Category, Span};
use proptest::prelude::*;

fn category() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

/// Small spans packed close together, so that models overlap often.
fn span() -> impl Strategy<Value = Span> {
    (0usize..120, 1usize..30, category()).prop_map(|(s, l, c)| Span::new(s, s + l, c))
}

fn votes() -> impl Strategy<Value = Votes> {
    prop::collection::vec(prop::collection::vec(span(), 0..12), 1..5).prop_map(|models| Votes {
        models: models.into_iter().enumerate().collect(),
    })
}

/// What one model makes of one true span: kept or missed, boundaries moved by up to 20
/// characters, sometimes another category.
fn reading() -> impl Strategy<Value = (bool, i64, i64, Option<Category>)> {
    (
        prop::bool::weighted(0.8),
        -20i64..=20,
        -20i64..=20,
        prop::option::weighted(0.1, category()),
    )
}

/// Votes shaped like real models' on a discharge summary: true spans anywhere in 15,000
/// characters, 3 to 400 long, of all nine categories; each of 1 to 5 models reads each true
/// span with jitter (or misses it, or changes its category) and adds a few spurious spans.
fn realistic_votes() -> impl Strategy<Value = Votes> {
    let truth = prop::collection::vec((0usize..15_000, 3usize..400, category()), 1..20);
    (truth, 1usize..6).prop_flat_map(|(truth, models)| {
        let n = truth.len();
        let model = (
            prop::collection::vec(reading(), n),
            prop::collection::vec((0usize..15_000, 1usize..200, category()), 0..8),
        );
        (Just(truth), prop::collection::vec(model, models)).prop_map(|(truth, models)| {
            let models = models
                .into_iter()
                .enumerate()
                .map(|(k, (readings, spurious))| {
                    let mut spans: Vec<Span> = truth
                        .iter()
                        .zip(readings)
                        .filter(|(_, (kept, ..))| *kept)
                        .map(|(&(start, len, cat), (_, ds, de, other))| {
                            let s = (start as i64 + ds).max(0) as usize;
                            let e = ((start + len) as i64 + de).max(s as i64 + 1) as usize;
                            Span::new(s, e, other.unwrap_or(cat))
                        })
                        .collect();
                    spans.extend(spurious.into_iter().map(|(s, l, c)| Span::new(s, s + l, c)));
                    (k, spans)
                })
                .collect();
            Votes { models }
        })
    })
}

/// Models that each predict a subset of one shared pool of spans, so that exact agreement
/// (what majority and intersection count) is common.
fn shared_votes() -> impl Strategy<Value = Votes> {
    (prop::collection::vec(span(), 1..8), 1usize..6).prop_flat_map(|(pool, models)| {
        let n = pool.len();
        prop::collection::vec(prop::collection::vec(any::<bool>(), n), models).prop_map(
            move |masks| Votes {
                models: masks
                    .into_iter()
                    .enumerate()
                    .map(|(k, mask)| {
                        let spans = pool
                            .iter()
                            .zip(&mask)
                            .filter(|(_, m)| **m)
                            .map(|(s, _)| *s)
                            .collect();
                        (k, spans)
                    })
                    .collect(),
            },
        )
    })
}

/// The same votes with every offset moved right by `by`.
fn shifted(v: &Votes, by: usize) -> Votes {
    Votes {
        models: v
            .models
            .iter()
            .map(|(k, spans)| {
                let moved = spans
                    .iter()
                    .map(|s| Span::new(s.start + by, s.end + by, s.category))
                    .collect();
                (*k, moved)
            })
            .collect(),
    }
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

    /// Union is every observed span; majority keeps exactly the spans more than half of the
    /// models predicted, intersection those every model predicted; the consensus keeps only
    /// observed spans.
    #[test]
    fn voter_definitions(v in shared_votes()) {
        let n = v.models.len();
        let count = |s: &Span| v.models.iter().filter(|(_, m)| m.contains(s)).count();
        let mut observed: Vec<Span> = v.models.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        observed.sort_by_key(|s| (s.start, s.end, s.category));
        observed.dedup();
        let union = Union.vote(&v).spans;
        let majority = Majority.vote(&v).spans;
        let intersection = Intersection.vote(&v).spans;
        prop_assert_eq!(&union, &observed);
        for s in &observed {
            prop_assert_eq!(majority.contains(s), 2 * count(s) > n, "majority, {}", s);
            prop_assert_eq!(intersection.contains(s), count(s) == n, "intersection, {}", s);
        }
        for s in &SpanClusterConsensus::default().vote(&v).spans {
            prop_assert!(union.contains(s), "{} was never predicted", s);
        }
    }

    /// On realistic votes (all nine categories, long documents): the consensus decides each
    /// category alone, and moving every offset moves its output and nothing else.
    #[test]
    fn consensus_on_realistic_votes(v in realistic_votes(), p in params(), by in 1usize..5_000) {
        for boundary in [BoundaryVote::Joint, BoundaryVote::Independent] {
            let scc = SpanClusterConsensus { params: p, boundary, spans_only: true };
            let merged = scc.vote(&v).spans;
            for c in Category::ALL {
                let alone = scc.vote(&Votes { models: v.of_category(c) }).spans;
                let within: Vec<Span> = merged.iter().copied().filter(|s| s.category == c).collect();
                prop_assert_eq!(within, alone, "category {}", c.id());
            }
            let moved = scc.vote(&shifted(&v, by)).spans;
            prop_assert_eq!(moved, shifted(&Votes { models: vec![(0, merged)] }, by).models[0].1.clone());
        }
        // With no support needed every cluster is kept: each predicted category has output.
        let keep_all = SpanClusterConsensus {
            params: SccParams { min_cluster_support: 0.0, ..p },
            ..SpanClusterConsensus::default()
        };
        let kept = keep_all.vote(&v).spans;
        for c in Category::ALL {
            let predicted = v.models.iter().any(|(_, s)| s.iter().any(|x| x.category == c));
            prop_assert_eq!(kept.iter().any(|s| s.category == c), predicted, "category {}", c.id());
        }
        for voter in [&Majority as &dyn Voter, &Union, &Intersection] {
            let moved = voter.vote(&shifted(&v, by)).spans;
            let then_moved = shifted(&Votes { models: vec![(0, voter.vote(&v).spans)] }, by);
            prop_assert_eq!(moved, then_moved.models[0].1.clone(), "{}", voter.name());
        }
    }
}

#[test]
fn no_models_no_spans() {
    let none = Votes { models: vec![] };
    for voter in [
        &SpanClusterConsensus::default() as &dyn Voter,
        &Majority,
        &Union,
        &Intersection,
        &WeightedBoundaryFusion {
            params: SccParams::default(),
        },
    ] {
        assert!(voter.vote(&none).spans.is_empty(), "{}", voter.name());
    }
}
