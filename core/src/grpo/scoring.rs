//! Scoring a generation batch with several rewards at once, as `lamar train grpo` does: each
//! reward with its weight ([`WeightedReward`], written `NAME[=WEIGHT]` or `PATH.wasm[=WEIGHT]` on
//! the command line: [`RewardSpec`]), every completion scored by every reward, and a reward that
//! fails handled as the user chose ([`OnRewardError`]): the run stops with an error naming the
//! reward, or that reward counts as missing for the batch (TRL's `None`, which the advantages
//! leave out: [`super::advantage`]).

use crate::reward::{BuiltinReward, Reward, RewardError, Sample};
use std::path::PathBuf;

/// A reward and its weight in the sum of rewards.
pub struct WeightedReward {
    /// The reward (built in, or a plugin).
    pub reward: Box<dyn Reward>,
    /// Its weight (TRL's `reward_weights`; 1 by default).
    pub weight: f64,
}

/// What to do when a reward fails (a plugin traps, runs out of fuel, answers NaN or refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRewardError {
    /// Stop the run with an error naming the reward (the last checkpoint stays as it was).
    #[default]
    Stop,
    /// The reward counts as missing for every completion of the batch.
    Skip,
}

/// Where a reward comes from, as the command line names it.
#[derive(Debug, Clone, PartialEq)]
pub enum RewardSource {
    /// One of LAMAR's rewards.
    Builtin(BuiltinReward),
    /// A reward plugin (`lamar:plugin/reward`).
    Plugin(PathBuf),
}

impl RewardSource {
    /// A built-in reward's name (with or without the reference's `reward_` prefix), or a path
    /// ending in `.wasm`.
    pub fn parse(name: &str) -> Result<RewardSource, RewardSpecError> {
        if name.ends_with(".wasm") {
            return Ok(RewardSource::Plugin(PathBuf::from(name)));
        }
        BuiltinReward::from_name(name)
            .map(RewardSource::Builtin)
            .ok_or_else(|| RewardSpecError::Unknown(name.into()))
    }
}

/// A reward named on the command line: `NAME[=WEIGHT]` or `PATH.wasm[=WEIGHT]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardSpec {
    /// The reward.
    pub source: RewardSource,
    /// Its weight (1 when not given).
    pub weight: f64,
}

/// Why a reward specification cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RewardSpecError {
    /// The name is neither a built-in reward nor a `.wasm` file.
    #[error(
        "unknown reward {0:?}: the built-in rewards are {names} (or give a plugin's .wasm file)",
        names = BuiltinReward::ALL.map(BuiltinReward::name).join(", ")
    )]
    Unknown(String),
    /// The weight is not a finite number.
    #[error("reward {spec:?}: the weight {weight:?} is not a finite number")]
    Weight {
        /// The whole specification.
        spec: String,
        /// The weight as written.
        weight: String,
    },
}

impl RewardSpec {
    /// Parses `NAME[=WEIGHT]` (a built-in reward, with or without the reference's `reward_`
    /// prefix) or `PATH.wasm[=WEIGHT]`. The weight is split at the last `=`, so a plugin path
    /// may contain `=` when a weight follows.
    pub fn parse(text: &str) -> Result<RewardSpec, RewardSpecError> {
        let (name, weight) = match text.rsplit_once('=') {
            Some((name, weight)) if !name.is_empty() => {
                let value: f64 = weight.trim().parse().map_err(|_| RewardSpecError::Weight {
                    spec: text.into(),
                    weight: weight.into(),
                })?;
                if !value.is_finite() {
                    return Err(RewardSpecError::Weight {
                        spec: text.into(),
                        weight: weight.into(),
                    });
                }
                (name, value)
            }
            _ => (text, 1.0),
        };
        Ok(RewardSpec {
            source: RewardSource::parse(name)?,
            weight,
        })
    }
}

/// A reward failed and the run stops.
#[derive(Debug, thiserror::Error)]
#[error("reward {reward} failed")]
pub struct ScoringError {
    /// The reward's name.
    pub reward: String,
    /// What went wrong.
    #[source]
    pub source: RewardError,
}

/// What [`score_batch`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchScores {
    /// Per completion, one score per reward (in the rewards' order); `None` where a reward
    /// failed and was skipped.
    pub scores: Vec<Vec<Option<f64>>>,
    /// The rewards that failed and were skipped, with their errors.
    pub skipped: Vec<(String, String)>,
}

/// Scores every sample with every reward. A reward's answer must be one finite score per
/// sample ([`crate::reward::check_scores`]); anything else is a failure, handled as `on_error`
/// says.
pub fn score_batch(
    rewards: &[WeightedReward],
    samples: &[Sample<'_>],
    on_error: OnRewardError,
) -> Result<BatchScores, ScoringError> {
    let mut scores = vec![Vec::with_capacity(rewards.len()); samples.len()];
    let mut skipped = Vec::new();
    for r in rewards {
        let name = r.reward.name().to_string();
        let answer = r.reward.score(samples).and_then(|s| {
            crate::reward::check_scores(&name, samples.len(), &s)?;
            Ok(s)
        });
        match (answer, on_error) {
            (Ok(values), _) => {
                for (row, v) in scores.iter_mut().zip(values) {
                    row.push(Some(v));
                }
            }
            (Err(source), OnRewardError::Stop) => {
                return Err(ScoringError {
                    reward: name,
                    source,
                });
            }
            (Err(source), OnRewardError::Skip) => {
                skipped.push((name, source.to_string()));
                for row in &mut scores {
                    row.push(None);
                }
            }
        }
    }
    Ok(BatchScores { scores, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reward that answers what it was built with.
    struct Fixed(&'static str, Vec<f64>);

    impl Reward for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn score(&self, _: &[Sample<'_>]) -> Result<Vec<f64>, RewardError> {
            Ok(self.1.clone())
        }
    }

    fn weighted(name: &'static str, values: Vec<f64>) -> WeightedReward {
        WeightedReward {
            reward: Box::new(Fixed(name, values)),
            weight: 1.0,
        }
    }

    const SAMPLE: Sample<'static> = Sample {
        completion: "a",
        gold: "a",
        raw_text: "a",
    };

    #[test]
    fn specifications_name_a_reward_and_maybe_a_weight() {
        let spec = RewardSpec::parse("fidelity").unwrap();
        assert_eq!(spec.source, RewardSource::Builtin(BuiltinReward::Fidelity));
        assert_eq!(spec.weight, 1.0);
        let spec = RewardSpec::parse("reward_exact_match_f1=0.5").unwrap();
        assert_eq!(
            spec.source,
            RewardSource::Builtin(BuiltinReward::ExactMatchF1)
        );
        assert_eq!(spec.weight, 0.5);
        let spec = RewardSpec::parse("dir/a=b/mine.wasm=2").unwrap();
        assert_eq!(
            spec.source,
            RewardSource::Plugin("dir/a=b/mine.wasm".into())
        );
        assert_eq!(spec.weight, 2.0);
        let err = RewardSpec::parse("fidelty").unwrap_err().to_string();
        assert!(
            err.contains("\"fidelty\"") && err.contains("exact_match_f1"),
            "{err}"
        );
        let err = RewardSpec::parse("fidelity=heavy").unwrap_err().to_string();
        assert!(err.contains("\"heavy\""), "{err}");
        assert!(RewardSpec::parse("fidelity=inf").is_err());
    }

    #[test]
    fn a_failing_reward_stops_the_run_or_goes_missing() {
        let rewards = [
            weighted("good", vec![0.25, 0.75]),
            weighted("nan", vec![0.5, f64::NAN]),
            weighted("short", vec![1.0]),
        ];
        let samples = [SAMPLE; 2];
        let err = score_batch(&rewards, &samples, OnRewardError::Stop).unwrap_err();
        assert_eq!(err.reward, "nan");
        assert_eq!(err.to_string(), "reward nan failed");
        assert!(
            err.source.to_string().contains("score 1 is NaN"),
            "{}",
            err.source
        );
        let got = score_batch(&rewards, &samples, OnRewardError::Skip).unwrap();
        assert_eq!(
            got.scores,
            vec![vec![Some(0.25), None, None], vec![Some(0.75), None, None]]
        );
        let names: Vec<&str> = got.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["nan", "short"]);
        assert!(got.skipped[1].1.contains("1 scores for 2 samples"));
    }
}
