//! The plugin host against the example and hostile plugins.

mod common;

use common::plugin;
use lamar_core::ensemble::input::{VotesByDocument, add_model};
use lamar_core::ensemble::merge_all;
use lamar_core::ensemble::scc::{SccParams, SpanClusterConsensus};
use lamar_core::formats::predictions::predictions_to_string;
use lamar_core::synth::{NoiseRates, SynthConfig, generate, simulate};
use lamar_plugins::{Limits, PluginError, PluginHost, RewardInput};
use std::path::Path;

fn synthetic_votes(docs: usize, seed: u64) -> VotesByDocument {
    let corpus = generate(&SynthConfig { docs, seed });
    let mut votes = VotesByDocument::new();
    for k in 0..3 {
        let sim = simulate(&corpus, k, &NoiseRates::default(), seed);
        add_model(
            &mut votes,
            k,
            &predictions_to_string(&sim.predictions),
            "synthetic",
        )
        .unwrap();
    }
    votes
}

fn test_limits() -> Limits {
    Limits {
        fuel_per_call: 200_000_000,
        memory_bytes: 16 << 20,
        stack_bytes: 256 << 10,
    }
}

#[test]
fn boundary_vote_plugin_equals_the_native_consensus() {
    let host = PluginHost::new(Limits::default()).unwrap();
    let voter = host
        .load_voter(&plugin("lamar-plugin-boundary-vote"))
        .unwrap();
    assert_eq!(voter.info().name, "boundary-vote");
    let votes = synthetic_votes(120, 11);
    let mut spans = 0;
    for params in [
        SccParams::default(),
        SccParams {
            min_cluster_iou: 0.4,
            min_pairwise_iou: 0.05,
            min_cluster_support: 0.6,
            min_iou_same_cat: 0.5,
        },
        SccParams {
            min_cluster_iou: 0.0,
            min_pairwise_iou: 0.0,
            min_cluster_support: 0.0,
            min_iou_same_cat: 1.0,
        },
    ] {
        let native = merge_all(
            &votes,
            &SpanClusterConsensus {
                params,
                ..SpanClusterConsensus::default()
            },
        );
        let plugged = voter.merge_all(&votes, &params, true).unwrap();
        assert_eq!(plugged.len(), native.len());
        let spans_only = voter.merge_all(&votes, &params, false).unwrap();
        assert_eq!(spans_only.len(), native.len());
        for ((name, a), (other, b)) in spans_only.iter().zip(&native) {
            assert_eq!(name, other);
            assert_eq!(a.spans, b.spans);
        }
        for ((name, a), (other, b)) in plugged.iter().zip(&native) {
            assert_eq!(name, other);
            // Spans and the whole explanation (weights, clusters, support, boundaries, kept).
            assert_eq!(a, b, "{name} {params:?}");
            spans += a.spans.len();
        }
    }
    assert!(spans > 5000, "{spans}");
}

#[test]
fn majority_voter_keeps_clusters_most_models_share() {
    let host = PluginHost::new(Limits::default()).unwrap();
    let voter = host
        .load_voter(&plugin("lamar-plugin-majority-voter"))
        .unwrap();
    let votes = synthetic_votes(30, 5);
    let merged = voter
        .merge_all(&votes, &SccParams::default(), true)
        .unwrap();
    let mut kept = 0;
    for (name, m) in &merged {
        let models = votes[name].models.len();
        for record in m.explanation.categories.iter().flat_map(|c| &c.clusters) {
            let mut voters: Vec<usize> = record.members.iter().map(|x| x.model).collect();
            voters.sort_unstable();
            voters.dedup();
            assert_eq!(record.kept, 2 * voters.len() > models, "{name}");
            assert!(
                record
                    .members
                    .iter()
                    .any(|x| (x.start, x.end) == record.boundary)
            );
            kept += usize::from(record.kept);
        }
    }
    assert!(kept > 100, "{kept}");
}

/// Runs the chaos voter in `mode` (see its docs) on a small input.
fn chaos(host: &PluginHost, mode: f64) -> Result<(), PluginError> {
    let voter = host.load_voter(&plugin("lamar-plugin-fixture-chaos-voter"))?;
    let params = SccParams {
        min_cluster_iou: mode,
        ..SccParams::default()
    };
    voter
        .merge_all(&synthetic_votes(3, 1), &params, false)
        .map(|_| ())
}

#[test]
fn hostile_voters_are_stopped_and_the_next_call_works() {
    let host = PluginHost::new(test_limits()).unwrap();
    let voter = host
        .load_voter(&plugin("lamar-plugin-fixture-chaos-voter"))
        .unwrap();
    let votes = synthetic_votes(3, 1);
    let run = |mode: f64| {
        let params = SccParams {
            min_cluster_iou: mode,
            ..SccParams::default()
        };
        voter.merge_all(&votes, &params, false)
    };
    let well_behaved = run(0.1).unwrap();
    type Expect = fn(&PluginError) -> bool;
    let checks: [(f64, Expect); 7] = [
        (0.901, |e| matches!(e, PluginError::OutOfFuel { .. })),
        (0.902, |e| matches!(e, PluginError::OutOfMemory { .. })),
        (0.903, |e| matches!(e, PluginError::Trap { .. })),
        (0.904, |e| matches!(e, PluginError::BadOutput { .. })),
        (0.905, |e| matches!(e, PluginError::BadOutput { .. })),
        (0.906, |e| matches!(e, PluginError::Refused { .. })),
        (0.907, |e| matches!(e, PluginError::StackOverflow { .. })),
    ];
    for (mode, expected) in checks {
        let err = run(mode).expect_err("the plugin misbehaved");
        assert!(expected(&err), "mode {mode}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("chaos_voter.wasm"),
            "names the plugin: {text}"
        );
        // The same plugin, next call: as if nothing happened.
        assert_eq!(run(0.1).unwrap(), well_behaved, "after mode {mode}");
    }
    // A fresh host sees the same.
    assert!(chaos(&PluginHost::new(test_limits()).unwrap(), 0.1).is_ok());
}

#[test]
fn plugins_that_break_the_rules_are_refused_at_load() {
    let host = PluginHost::new(test_limits()).unwrap();
    let err = host
        .load_voter(&plugin("lamar-plugin-fixture-forbidden-import"))
        .err()
        .unwrap();
    assert!(
        matches!(&err, PluginError::ForbiddenImport { imports, .. } if imports.contains("env.clock_ms")),
        "{err}"
    );
    let err = host
        .load_voter(&plugin("lamar-plugin-fixture-old-interface"))
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, PluginError::WrongInterface { .. })
            && text.contains("lamar:plugin/voter@0.9.0")
            && text.contains("lamar:plugin/voter@1.0.0"),
        "{text}"
    );
    // A voter is not a reward, and the other way round.
    let err = host
        .load_reward(&plugin("lamar-plugin-boundary-vote"))
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::WrongInterface { .. }), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    let err = host.load_voter(&junk).err().unwrap();
    assert!(
        matches!(err, PluginError::NotAPlugin { .. }) && err.to_string().contains("junk.wasm"),
        "{err}"
    );
    let plain = dir.path().join("plain.wasm");
    // A valid module without the plugin interface.
    std::fs::write(&plain, b"\0asm\x01\0\0\0").unwrap();
    let err = host.load_voter(&plain).err().unwrap();
    assert!(
        matches!(&err, PluginError::WrongInterface { found, .. } if found == "no interface"),
        "{err}"
    );
    let err = host
        .load_voter(Path::new("/nonexistent/v.wasm"))
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::Read { .. }), "{err}");
}

#[test]
fn check_reports_kind_and_info() {
    let host = PluginHost::new(Limits::default()).unwrap();
    let report = host
        .check(&plugin("lamar-plugin-exact-match-reward"))
        .unwrap();
    assert_eq!(report.kind, lamar_plugins::PluginKind::Reward);
    assert_eq!(report.info.name, "exact-match-f1");
    assert_eq!(report.interface, "lamar:plugin/reward@1.0.0");
    let report = host.check(&plugin("lamar-plugin-boundary-vote")).unwrap();
    assert_eq!(report.kind, lamar_plugins::PluginKind::Voter);
    assert!(
        host.check(&plugin("lamar-plugin-fixture-old-interface"))
            .is_err()
    );
}

#[test]
fn reward_plugin_scores_in_order() {
    let host = PluginHost::new(Limits::default()).unwrap();
    let reward = host
        .load_reward(&plugin("lamar-plugin-exact-match-reward"))
        .unwrap();
    let gold = "<drug_decision>start lasix</drug_decision> then <gather_info>CT</gather_info>";
    let inputs: Vec<RewardInput> = [
        gold,
        "<think>x</think><drug_decision>Start Lasix.</drug_decision>",
        "nothing",
        "<think>never closed",
    ]
    .iter()
    .cycle()
    .take(150)
    .map(|c| RewardInput {
        completion: c,
        gold,
        raw_text: "start lasix then CT",
    })
    .collect();
    let scores = reward.score(&inputs).unwrap();
    assert_eq!(scores.len(), 150);
    for (k, s) in scores.iter().enumerate() {
        assert_eq!(*s, [1.0, 0.5, 0.0, 0.0][k % 4], "{k}");
    }
}

/// The reward plugin against LAMAR's own `reward_exact_match_f1` (goldens it computed,
/// `tests/golden/exact_match_reward`: its README names the commit and the generator) on
/// simulated model outputs and hand-made edge cases.
#[test]
fn exact_match_reward_equals_the_reference() {
    let corpus = generate(&SynthConfig { docs: 40, seed: 9 });
    let gold_rows: Vec<String> = corpus
        .documents
        .iter()
        .map(|d| lamar_core::codec::encode(&d.text, &d.gold).unwrap_or_default())
        .collect();
    let mut completions: Vec<(String, String)> = Vec::new();
    for k in 0..2 {
        let sim = simulate(&corpus, k, &NoiseRates::default(), 9);
        assert_eq!(sim.outputs.len(), gold_rows.len());
        for ((out, gold), doc) in sim.outputs.iter().zip(&gold_rows).zip(&corpus.documents) {
            assert_eq!(out.file_id, doc.id);
            completions.push((out.predicted.clone(), gold.clone()));
        }
    }
    let gold = "<drug_decision>Start <b>Lasix</b> 40mg.</drug_decision> <gather_info>[**Hospital 1**] CT</gather_info>";
    for edge in [
        "<think>thinking <drug_decision>x</drug_decision></think>  <drug_decision>start lasix 40mg</drug_decision>",
        "   <think>unfinished <drug_decision>start lasix 40mg</drug_decision>",
        "<drug_decision><drug_decision>start lasix 40mg</drug_decision> (--)</drug_decision>",
        "<gather_info> [**Hospital 1**] CT.. </gather_info><gather_info>ÇT</gather_info>",
        "<drug_decision>start lasix 40mg",
        "</drug_decision>start<drug_decision >x</drug_decision>",
        "<<drug_decision>>start lasix 40mg</drug_decision>>",
        "\u{1c}<drug_decision>\u{1f}START LASIX 40MG\u{1d}</drug_decision>",
        "",
    ] {
        completions.push((edge.to_string(), gold.to_string()));
    }
    let golden =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/exact_match_reward");
    let inputs_text: String = completions
        .iter()
        .map(|(c, g)| serde_json::json!({"completion": c, "gold": g}).to_string() + "\n")
        .collect();
    if std::env::var_os("LAMAR_WRITE_REWARD_INPUTS").is_some() {
        std::fs::write(golden.join("inputs.jsonl"), &inputs_text).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(golden.join("inputs.jsonl")).unwrap(),
        inputs_text,
        "the goldens were made from these completions"
    );
    let theirs: Vec<f64> = std::fs::read_to_string(golden.join("rewards.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["reward"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let reward = PluginHost::new(Limits::default())
        .unwrap()
        .load_reward(&plugin("lamar-plugin-exact-match-reward"))
        .unwrap();
    let inputs: Vec<RewardInput> = completions
        .iter()
        .map(|(c, g)| RewardInput {
            completion: c,
            gold: g,
            raw_text: "",
        })
        .collect();
    let ours = reward.score(&inputs).unwrap();
    assert_eq!(ours.len(), theirs.len());
    let mut distinct = std::collections::BTreeSet::new();
    for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!(
            (a - b).abs() < 1e-12,
            "{k}: {a} vs {b}: {:?}",
            completions[k]
        );
        distinct.insert(a.to_bits());
    }
    assert!(
        distinct.len() > 20,
        "the cases cover many scores: {}",
        distinct.len()
    );
}

#[test]
fn one_plugin_serves_many_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<lamar_plugins::VoterPlugin>();
    shareable::<lamar_plugins::RewardPlugin>();
    shareable::<PluginHost>();
    let host = PluginHost::new(Limits::default()).unwrap();
    let voter = host
        .load_voter(&plugin("lamar-plugin-boundary-vote"))
        .unwrap();
    let votes = synthetic_votes(40, 3);
    let params = SccParams::default();
    let want = voter.merge_all(&votes, &params, false).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(voter.merge_all(&votes, &params, false).unwrap(), want));
        }
    });
}
