//! LAMAR's GRPO rewards.

use crate::error;
use lamar_core::reward::{BuiltinReward, Sample};
use pyo3::prelude::*;

/// The built-in reward `name` (with or without `reward_`) of each completion (already reduced
/// to its text); `gold` and `raw_text` hold one entry per completion.
#[pyfunction]
pub fn reward(
    py: Python<'_>,
    name: &str,
    completions: Vec<String>,
    gold: Vec<String>,
    raw_text: Vec<String>,
) -> PyResult<Vec<f64>> {
    let reward = BuiltinReward::from_name(name).ok_or_else(|| {
        error(format!(
            "unknown reward {name:?}: the built-in rewards are {}",
            BuiltinReward::ALL.map(BuiltinReward::name).join(", ")
        ))
    })?;
    let n = completions.len();
    if gold.len() != n || raw_text.len() != n {
        return Err(error(format!(
            "{n} completions but {} gold texts and {} raw texts",
            gold.len(),
            raw_text.len()
        )));
    }
    Ok(py.detach(|| {
        (0..n)
            .map(|k| {
                reward.score_one(&Sample {
                    completion: &completions[k],
                    gold: &gold[k],
                    raw_text: &raw_text[k],
                })
            })
            .collect()
    }))
}

/// The names of the built-in rewards, GRPO's three first.
#[pyfunction]
pub fn reward_names() -> Vec<&'static str> {
    BuiltinReward::ALL.map(BuiltinReward::name).to_vec()
}
