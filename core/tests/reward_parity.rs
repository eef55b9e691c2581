//! lamar's built-in rewards against LAMAR's own `utils/rewards.py` (goldens it computed:
//! `tests/golden/rewards`, made by `core/tests/python/golden_rewards.py`, whose header names the
//! commit and says how to run it).

use lamar_core::reward::{BuiltinReward, Sample};
use serde_json::Value;
use std::path::PathBuf;

fn golden(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden/rewards")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_builtin_reward_equals_the_reference() {
    let inputs = golden("inputs.jsonl");
    let expected = golden("rewards.jsonl");
    assert_eq!(inputs.len(), expected.len());
    assert!(inputs.len() > 100, "the goldens are missing rows");
    for reward in BuiltinReward::ALL {
        let mut strictly_between = 0;
        for (k, (input, want)) in inputs.iter().zip(&expected).enumerate() {
            let sample = Sample {
                completion: input["completion"].as_str().unwrap(),
                gold: input["gold"].as_str().unwrap(),
                raw_text: input["raw_text"].as_str().unwrap(),
            };
            let want = want[reward.name()]
                .as_f64()
                .unwrap_or_else(|| panic!("no golden {} in row {k}", reward.name()));
            let got = reward.score_one(&sample);
            // The reference sums its per-tag scores in Python's set order: the last bits of a
            // mean may differ.
            assert!(
                (got - want).abs() <= 1e-12,
                "{} on row {k}: lamar {got}, reference {want}",
                reward.name()
            );
            strictly_between += usize::from(want > 0.0 && want < 1.0);
        }
        // Every reward is exercised away from its 0/1 edge cases too.
        assert!(
            strictly_between >= 10,
            "{}: only {strictly_between} rows in (0, 1)",
            reward.name()
        );
    }
}
