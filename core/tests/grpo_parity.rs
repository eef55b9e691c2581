//! GRPO's arithmetic against PyTorch (goldens it computed in float64: `tests/golden/grpo`, made
//! by `core/tests/python/golden_grpo.py` from the formulas of `lamar-spec.md` §6.3): GDPO and
//! GRPO advantages with missing rewards, zero-variance groups and groups of one; DAPO's loss and
//! its gradient per token log-probability with truncated completions and clipped ratios.

use lamar_core::grpo::{
    AdvantageOptions, Aggregation, ClipRange, CompletionTokens, RewardScale, advantages, dapo_loss,
};
use serde_json::Value;
use std::path::PathBuf;

fn golden(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden/grpo")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{what}: lamar {got}, PyTorch {want}"
    );
}

#[test]
fn advantages_equal_pytorchs() {
    let cases = golden("advantages.jsonl");
    assert!(cases.len() >= 80, "the goldens are missing cases");
    let mut nonzero = 0;
    for case in &cases {
        let id = &case["case"];
        let rewards: Vec<Vec<Option<f64>>> = case["rewards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_array().unwrap().iter().map(Value::as_f64).collect())
            .collect();
        let options = AdvantageOptions {
            group_size: case["group_size"].as_u64().unwrap() as usize,
            aggregation: match case["aggregation"].as_str().unwrap() {
                "normalize_then_sum" => Aggregation::NormalizeThenSum,
                _ => Aggregation::SumThenNormalize,
            },
            scale: match case["scale"].as_str().unwrap() {
                "group" => RewardScale::Group,
                "batch" => RewardScale::Batch,
                _ => RewardScale::None,
            },
            weights: numbers(&case["weights"]),
        };
        let got = advantages(&rewards, &options).unwrap();
        let want = numbers(&case["advantages"]);
        assert_eq!(got.values.len(), want.len(), "case {id}");
        for (k, (g, w)) in got.values.iter().zip(&want).enumerate() {
            close(
                *g,
                *w,
                &format!("case {id} ({}), completion {k}", case["kind"]),
            );
            nonzero += usize::from(w.abs() > 1e-3);
        }
        if case["kind"] == "flat_group" {
            assert!(got.zero_variance[0], "case {id}: the first group is flat");
        }
        if case["kind"] == "uniform" {
            assert!(
                got.zero_variance.iter().all(|z| !z) || options.group_size == 1,
                "case {id}"
            );
        }
    }
    assert!(nonzero > 500, "the goldens are mostly zeros ({nonzero})");
}

#[test]
fn dapo_loss_and_gradients_equal_pytorchs() {
    let cases = golden("dapo.jsonl");
    assert!(cases.len() >= 20, "the goldens are missing cases");
    let (mut clipped_cases, mut masked_cases) = (0, 0);
    for case in &cases {
        let id = &case["case"];
        let completions: Vec<CompletionTokens> = case["completions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| CompletionTokens {
                logprobs: numbers(&c["logprobs"]),
                old_logprobs: numbers(&c["old_logprobs"]),
                advantage: c["advantage"].as_f64().unwrap(),
                in_loss: c["in_loss"].as_bool().unwrap(),
            })
            .collect();
        masked_cases += usize::from(completions.iter().any(|c| !c.in_loss));
        let got = dapo_loss(&completions, ClipRange::default()).unwrap();
        close(
            got.loss,
            case["loss"].as_f64().unwrap(),
            &format!("case {id}: loss"),
        );
        assert_eq!(got.tokens as u64, case["tokens"].as_u64().unwrap());
        clipped_cases += usize::from(got.clipped_fraction > 0.0);
        for (k, (g, w)) in got
            .logprob_grads
            .iter()
            .zip(case["logprob_grads"].as_array().unwrap())
            .enumerate()
        {
            let w = numbers(w);
            assert_eq!(g.len(), w.len());
            for (t, (a, b)) in g.iter().zip(&w).enumerate() {
                close(*a, *b, &format!("case {id}: completion {k}, token {t}"));
            }
        }
    }
    assert!(clipped_cases > 5, "no case clips a ratio");
    assert!(masked_cases > 2, "no case masks a completion");
}

#[test]
fn bad_batches_are_refused() {
    let options = AdvantageOptions {
        group_size: 4,
        aggregation: Aggregation::NormalizeThenSum,
        scale: RewardScale::Group,
        weights: vec![1.0, 1.0],
    };
    let three = vec![vec![Some(1.0), Some(0.0)]; 3];
    assert!(advantages(&three, &options).is_err(), "not whole groups");
    let mut four = vec![vec![Some(1.0), Some(0.0)]; 4];
    four[2].pop();
    let error = advantages(&four, &options).unwrap_err().to_string();
    assert!(error.contains("completion 2"), "{error}");
    let uneven = CompletionTokens {
        logprobs: vec![-1.0, -2.0],
        old_logprobs: vec![-1.0],
        advantage: 1.0,
        in_loss: true,
    };
    assert!(dapo_loss(&[uneven], ClipRange::default()).is_err());
}
