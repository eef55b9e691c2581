//! Rewards: functions that score a model's completions against the gold, for GRPO training and
//! for `lamar reward`. Every reward is a [`Reward`], whether native or a WebAssembly plugin
//! (`lamar-plugins` implements the trait for `lamar:plugin/reward`), as every merging rule is an
//! [`ensemble::Voter`](crate::ensemble::Voter).
//!
//! LAMAR's own rewards are built in ([`BuiltinReward`]: fidelity, fast token F1, exact-match
//! F1 and the unused variants, exactly as `utils/rewards.py`), read through [`extract`] (the
//! answer, the tag-free text, the cleaned tagged strings); [`bleu`] is sacrebleu's sentence BLEU.
//!
//! The completions file `lamar reward` reads is JSON Lines of [`CompletionRow`]s
//! ([`parse_completions`]); its scores are written back as [`rewards_jsonl`].

pub mod bleu;
pub mod builtin;
pub mod extract;

pub use builtin::BuiltinReward;

use crate::formats::FormatError;
use serde::{Deserialize, Serialize};

/// One completion to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// The model's output (tagged text, possibly after a `</think>`).
    pub completion: &'a str,
    /// The gold tagged text.
    pub gold: &'a str,
    /// The untagged document.
    pub raw_text: &'a str,
}

/// Why a reward could not score a batch.
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    /// The reward answered something other than one finite score per sample.
    #[error("{reward}: {message}")]
    BadOutput {
        /// The reward's name.
        reward: String,
        /// What was wrong.
        message: String,
    },
    /// The reward failed (a plugin trapped, ran out of fuel, refused its input).
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// A reward function.
pub trait Reward: Send + Sync {
    /// The reward's name, for reports.
    fn name(&self) -> &str;
    /// One finite score per sample, in order (higher is better).
    fn score(&self, samples: &[Sample<'_>]) -> Result<Vec<f64>, RewardError>;
}

/// Checks a reward's answer: one finite score per sample.
pub fn check_scores(reward: &str, samples: usize, scores: &[f64]) -> Result<(), RewardError> {
    let bad = |message: String| RewardError::BadOutput {
        reward: reward.to_string(),
        message,
    };
    if scores.len() != samples {
        return Err(bad(format!(
            "{} scores for {samples} samples",
            scores.len()
        )));
    }
    if let Some(k) = scores.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!("score {k} is {}", scores[k])));
    }
    Ok(())
}

/// One line of a completions file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionRow {
    /// Copied to the output (the line's 0-based index when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    /// The model's output.
    pub completion: String,
    /// The gold tagged text.
    pub gold: String,
    /// The untagged document.
    pub raw_text: String,
}

impl CompletionRow {
    /// The row as a sample to score.
    pub fn sample(&self) -> Sample<'_> {
        Sample {
            completion: &self.completion,
            gold: &self.gold,
            raw_text: &self.raw_text,
        }
    }
}

/// Parses a completions file (JSON Lines; blank lines skipped); `source` names it in errors,
/// which give the line.
pub fn parse_completions(text: &str, source: &str) -> Result<Vec<CompletionRow>, FormatError> {
    let mut rows = Vec::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(line).map_err(|e| FormatError::Invalid {
            path: source.to_string(),
            location: format!("line {}", k + 1),
            message: format!("expected {{\"completion\", \"gold\", \"raw_text\"[, \"id\"]}}: {e}"),
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// The scores as JSON Lines, `{"id", "reward"}` per row in order (the row's index when it has
/// no id). `scores` holds one score per row.
pub fn rewards_jsonl(rows: &[CompletionRow], scores: &[f64]) -> String {
    let mut text = String::new();
    for (k, (row, score)) in rows.iter().zip(scores).enumerate() {
        let id = row.id.clone().unwrap_or_else(|| k.into());
        text.push_str(&serde_json::json!({"id": id, "reward": score}).to_string());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A native reward for the test: 1 when the completion is as long as the gold, else 0.
    struct SameLength;

    impl Reward for SameLength {
        fn name(&self) -> &str {
            "same-length"
        }
        fn score(&self, samples: &[Sample<'_>]) -> Result<Vec<f64>, RewardError> {
            Ok(samples
                .iter()
                .map(|s| f64::from(u8::from(s.completion.len() == s.gold.len())))
                .collect())
        }
    }

    #[test]
    fn completions_parse_score_and_write_back() {
        let text = "{\"id\": \"a\", \"completion\": \"xy\", \"gold\": \"xy\", \"raw_text\": \"x\"}\n\n\
                    {\"completion\": \"x\", \"gold\": \"xy\", \"raw_text\": \"x\"}\n";
        let rows = parse_completions(text, "c.jsonl").unwrap();
        assert_eq!(rows.len(), 2);
        let reward: &dyn Reward = &SameLength;
        let samples: Vec<Sample> = rows.iter().map(CompletionRow::sample).collect();
        let scores = reward.score(&samples).unwrap();
        check_scores(reward.name(), samples.len(), &scores).unwrap();
        assert_eq!(
            rewards_jsonl(&rows, &scores),
            "{\"id\":\"a\",\"reward\":1.0}\n{\"id\":1,\"reward\":0.0}\n"
        );
    }

    #[test]
    fn bad_lines_and_bad_answers_are_reported() {
        let err = parse_completions("{\"completion\": \"x\"}\n", "c.jsonl").unwrap_err();
        assert!(
            err.to_string().starts_with("c.jsonl: line 1: expected"),
            "{err}"
        );
        let err = check_scores("r", 2, &[0.5]).unwrap_err();
        assert_eq!(err.to_string(), "r: 1 scores for 2 samples");
        let err = check_scores("r", 2, &[0.5, f64::NAN]).unwrap_err();
        assert_eq!(err.to_string(), "r: score 1 is NaN");
    }
}
