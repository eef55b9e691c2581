//! The rollout log of a GRPO run (`OUT/rollouts.jsonl`): one [`RolloutRecord`] per sampled
//! completion, written by `lamar train grpo` as it goes, read back here ([`parse_rollouts`])
//! and grouped by optimiser step for the viewer ([`group_rollouts`]).

use crate::formats::FormatError;
use serde::{Deserialize, Serialize};

/// A reward's value (or mean) under its name; `None` where it is missing (a reward that failed
/// under `--on-plugin-error skip`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedScore {
    /// The reward's name.
    pub name: String,
    /// The value.
    pub value: Option<f64>,
}

/// One sampled completion (a line of `rollouts.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// The optimiser step the completion was sampled for.
    pub step: usize,
    /// The prompt's document id.
    pub prompt_id: String,
    /// The completion's index in its group.
    pub index: usize,
    /// The completion's text (special tokens removed).
    pub completion: String,
    /// Its tokens.
    pub tokens: usize,
    /// Whether it ended with the end-of-turn token.
    pub finished: bool,
    /// Whether it counted in the loss.
    pub in_loss: bool,
    /// Each reward's score.
    pub rewards: Vec<NamedScore>,
    /// Its advantage.
    pub advantage: f64,
    /// Whether its group was dropped for carrying no signal (no step used it).
    pub dropped: bool,
}

/// The completions of one prompt, as one step sampled them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutGroup {
    /// The optimiser step.
    pub step: usize,
    /// The prompt's document id.
    pub prompt_id: String,
    /// Whether the group was dropped (dynamic sampling).
    pub dropped: bool,
    /// Each reward's mean over the group (`None` where no completion has it).
    pub means: Vec<NamedScore>,
    /// The completions, by index.
    pub completions: Vec<RolloutRecord>,
}

/// Parses a rollout log (JSON Lines; blank lines skipped); `source` names it in errors, which
/// give the line.
pub fn parse_rollouts(text: &str, source: &str) -> Result<Vec<RolloutRecord>, FormatError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(k, line)| {
            serde_json::from_str(line).map_err(|e| FormatError::Invalid {
                path: source.to_string(),
                location: format!("line {}", k + 1),
                message: format!("not a GRPO rollout record: {e}"),
            })
        })
        .collect()
}

/// The records grouped by (step, prompt, dropped) in the order they were written, each group's
/// completions by index, with each reward's mean over the group.
pub fn group_rollouts(records: &[RolloutRecord]) -> Vec<RolloutGroup> {
    let mut groups: Vec<RolloutGroup> = Vec::new();
    for r in records {
        let same = |g: &RolloutGroup| {
            g.step == r.step
                && g.prompt_id == r.prompt_id
                && g.dropped == r.dropped
                && g.completions.iter().all(|c| c.index != r.index)
        };
        match groups.last_mut() {
            Some(g) if same(g) => g.completions.push(r.clone()),
            _ => groups.push(RolloutGroup {
                step: r.step,
                prompt_id: r.prompt_id.clone(),
                dropped: r.dropped,
                means: Vec::new(),
                completions: vec![r.clone()],
            }),
        }
    }
    for g in &mut groups {
        g.completions.sort_by_key(|c| c.index);
        let names: Vec<String> = g.completions[0]
            .rewards
            .iter()
            .map(|n| n.name.clone())
            .collect();
        g.means = names
            .into_iter()
            .enumerate()
            .map(|(k, name)| NamedScore {
                name,
                value: super::advantage::mean(
                    g.completions.iter().filter_map(|c| c.rewards.get(k)?.value),
                ),
            })
            .collect();
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: usize, prompt: &str, index: usize, reward: Option<f64>) -> RolloutRecord {
        RolloutRecord {
            step,
            prompt_id: prompt.into(),
            index,
            completion: format!("completion {index}"),
            tokens: 3,
            finished: true,
            in_loss: true,
            rewards: vec![NamedScore {
                name: "fidelity".into(),
                value: reward,
            }],
            advantage: 0.0,
            dropped: false,
        }
    }

    #[test]
    fn records_round_trip_and_group_by_step_with_means() {
        let records = vec![
            record(1, "a", 1, Some(1.0)),
            record(1, "a", 0, Some(0.0)),
            record(2, "b", 0, None),
            record(2, "b", 1, Some(0.5)),
            record(2, "b", 1, Some(0.25)), // a second group of the same prompt and step
        ];
        let text: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n\n")
            .collect();
        assert_eq!(parse_rollouts(&text, "r.jsonl").unwrap(), records);
        let groups = group_rollouts(&records);
        assert_eq!(groups.len(), 3);
        assert_eq!(
            groups[0]
                .completions
                .iter()
                .map(|c| c.index)
                .collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(groups[0].means[0].value, Some(0.5));
        assert_eq!(
            groups[1].means[0].value,
            Some(0.5),
            "the missing value is left out"
        );
        assert_eq!(groups[2].completions.len(), 1);
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = parse_rollouts("\n{\"step\": 1}\n", "r.jsonl").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("r.jsonl: line 2: not a GRPO rollout record"),
            "{err}"
        );
    }
}
