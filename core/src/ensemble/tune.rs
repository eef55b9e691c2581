//! Searching the four Span-Cluster Consensus thresholds (LAMAR's `ensemble/optimize.py` ran
//! 5,000 Optuna TPE trials over `[0, 1]⁴` maximising the shared-task final score on validation).
//!
//! [`Tuner`] is a seeded TPE sampler (one Tree-structured Parzen Estimator per threshold, as
//! Optuna's default `TPESampler` is univariate too) that proposes trials in batches, so the
//! caller can evaluate a batch in parallel; results are then told back in trial order, which
//! keeps a run reproducible for a given seed and batch size. The default point is always the
//! first trial of a fresh study, and a study can resume from the trials of an earlier run.
//!
//! The "good" trials each estimator models are the best `min(⌈0.1·n⌉, 25)` of the `n` told
//! trials, Optuna's default split: the `tpe` crate's fixed fraction (10 % of all trials) would
//! model 500 "good" trials after 5,000, and explore where Optuna exploits.

use super::Voter;
use super::Votes;
use super::input::VotesByDocument;
use super::scc::{SccParams, SpanClusterConsensus};
use crate::formats::predictions::PredictedSpan;
use crate::formats::rows::parse_jsonl;
use crate::formats::{FormatError, read_utf8};
use crate::scorer::load::Inputs;
use crate::scorer::{ScoreError, Scorer, ScorerOptions};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tpe::TpeOptimizer;
use tpe::density_estimation::DefaultEstimatorBuilder;

/// Uniform random trials after the default point, before TPE takes over (Optuna's default).
pub const STARTUP_TRIALS: usize = 10;

/// One evaluated parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 0-based trial number.
    pub number: usize,
    /// The thresholds tried.
    pub params: SccParams,
    /// Objective value (higher is better).
    pub score: f64,
}

/// Most "good" trials a TPE estimator models (Optuna's default `gamma`).
pub const MAX_GOOD_TRIALS: usize = 25;

/// A TPE study over the four thresholds in `[0, 1)`.
pub struct Tuner {
    rng: ChaCha8Rng,
    trials: Vec<Trial>,
    /// The trials the sampler learns from: thresholds and the value to minimise.
    told: Vec<([f64; 4], f64)>,
}

fn as_array(p: &SccParams) -> [f64; 4] {
    [
        p.min_cluster_iou,
        p.min_pairwise_iou,
        p.min_cluster_support,
        p.min_iou_same_cat,
    ]
}

impl Tuner {
    /// A fresh study with a seed.
    pub fn new(seed: u64) -> Tuner {
        Tuner {
            rng: ChaCha8Rng::seed_from_u64(seed),
            trials: Vec::new(),
            told: Vec::new(),
        }
    }

    /// One estimator per threshold over the told trials, split Optuna's way.
    fn optimizers(&self) -> [TpeOptimizer<DefaultEstimatorBuilder>; 4] {
        let n = self.told.len().max(1);
        let good = n.div_ceil(10).min(MAX_GOOD_TRIALS);
        // The crate splits at ⌈n·gamma⌉; half a trial below `good` keeps rounding exact.
        let gamma = ((good as f64 - 0.5) / n as f64).clamp(0.0, 1.0);
        std::array::from_fn(|k| {
            let mut optimizer = tpe::TpeOptimizerBuilder::new()
                .gamma(gamma)
                .build(
                    tpe::parzen_estimator(),
                    tpe::range(0.0, 1.0).expect("0..1 is a valid range"),
                )
                .expect("gamma is in [0, 1]");
            for (params, value) in &self.told {
                // Checked when told.
                let _ = optimizer.tell(params[k], *value);
            }
            optimizer
        })
    }

    /// Trials so far.
    pub fn trials(&self) -> &[Trial] {
        &self.trials
    }

    /// The best trial so far (the earliest among equals).
    pub fn best(&self) -> Option<&Trial> {
        self.trials
            .iter()
            .fold(None, |best: Option<&Trial>, t| match best {
                Some(b) if b.score >= t.score => Some(b),
                _ => Some(t),
            })
    }

    /// Records a finished trial (from this run or a resumed log). Parameters outside `[0, 1)`
    /// still count as trials but do not inform the sampler.
    pub fn tell(&mut self, trial: Trial) {
        let params = as_array(&trial.params);
        // The sampler minimises; a NaN score or an out-of-range value is not learnt from.
        if !trial.score.is_nan() && params.iter().all(|v| (0.0..1.0).contains(v)) {
            self.told.push((params, -trial.score));
        }
        self.trials.push(trial);
    }

    /// Proposes the next `n` parameter sets. The default point comes first in a fresh study,
    /// then [`STARTUP_TRIALS`] uniform random points (as Optuna's sampler starts), then TPE.
    pub fn ask(&mut self, n: usize) -> Vec<SccParams> {
        let mut optimizers =
            (self.trials.len() + n > STARTUP_TRIALS + 1).then(|| self.optimizers());
        (0..n)
            .map(|k| {
                let number = self.trials.len() + k;
                if number == 0 {
                    return SccParams::default();
                }
                let mut v = [0.0; 4];
                if number <= STARTUP_TRIALS {
                    for slot in &mut v {
                        *slot = self.rng.random::<f64>();
                    }
                } else if let Some(optimizers) = optimizers.as_mut() {
                    for (slot, opt) in v.iter_mut().zip(optimizers.iter_mut()) {
                        *slot = opt.ask(&mut self.rng).unwrap_or(0.5).clamp(0.0, 1.0);
                    }
                }
                SccParams {
                    min_cluster_iou: v[0],
                    min_pairwise_iou: v[1],
                    min_cluster_support: v[2],
                    min_iou_same_cat: v[3],
                }
            })
            .collect()
    }

    /// Runs trials until `total` exist: asks batches of `batch`, evaluates each batch with
    /// `evaluate` (which may work in parallel and must return one score per parameter set, in
    /// order), tells the results and reports every finished trial to `on_trial`.
    pub fn run(
        &mut self,
        total: usize,
        batch: usize,
        mut evaluate: impl FnMut(&[SccParams]) -> Vec<f64>,
        mut on_trial: impl FnMut(&Trial),
    ) {
        let batch = batch.max(1);
        while self.trials.len() < total {
            let n = batch.min(total - self.trials.len());
            let params = self.ask(n);
            let scores = evaluate(&params);
            assert_eq!(scores.len(), params.len(), "one score per parameter set");
            for (params, score) in params.into_iter().zip(scores) {
                let trial = Trial {
                    number: self.trials.len(),
                    params,
                    score,
                };
                on_trial(&trial);
                self.tell(trial);
            }
        }
    }
}

impl Tuner {
    /// A study that continues from `earlier` trials (a trial log, [`read_trial_log`]).
    pub fn resume(seed: u64, earlier: impl IntoIterator<Item = Trial>) -> Tuner {
        let mut tuner = Tuner::new(seed);
        for trial in earlier {
            tuner.tell(trial);
        }
        tuner
    }
}

/// The trials of a JSONL trial log (one [`Trial`] per line, as `lamar tune --log` appends them).
pub fn read_trial_log(path: &Path) -> Result<Vec<Trial>, FormatError> {
    parse_jsonl(&read_utf8(path)?, &path.display().to_string())
}

/// Why a tuning objective could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ObjectiveError {
    /// The gold could not be prepared, or a predicted span refined.
    #[error(transparent)]
    Score(#[from] ScoreError),
    /// No model predicted on any scored document.
    #[error("no predicted document is in the gold (check the split and the file names)")]
    NoDocuments,
}

/// What a trial scores: the models' votes merged by Span-Cluster Consensus with the trial's
/// thresholds, then scored with the official metrics: the shared-task final score when
/// demographics were loaded, else (span F1 + token F1) / 2, as LAMAR's `optimize.py`.
/// Everything that does not depend on the thresholds is done once, when it is built.
pub struct ConsensusObjective {
    scorer: Scorer,
    documents: Vec<(String, Votes)>,
}

impl ConsensusObjective {
    /// Prepares the objective on the scored documents of `inputs` (gold, raw texts, optional
    /// split and demographics) for the models' `votes`.
    pub fn new(
        inputs: &Inputs,
        votes: &VotesByDocument,
        options: ScorerOptions,
    ) -> Result<ConsensusObjective, ObjectiveError> {
        let mut scorer = Scorer::new(
            &inputs.gold,
            &inputs.raw_texts,
            inputs.stats.as_deref(),
            options,
        )?;
        // Documents in the gold or in a (split-filtered) predictions file: those with raw text.
        let documents: Vec<(String, Votes)> = votes
            .iter()
            .filter(|(name, _)| inputs.raw_texts.contains_key(*name))
            .map(|(name, votes)| (name.clone(), votes.clone()))
            .collect();
        if documents.is_empty() {
            return Err(ObjectiveError::NoDocuments);
        }
        // The refined text of every span a model predicted, once.
        for (name, votes) in &documents {
            let offsets = votes
                .models
                .iter()
                .flat_map(|(_, s)| s.iter().map(|x| (x.start as i64, x.end as i64)));
            scorer.prime(name, offsets)?;
        }
        Ok(ConsensusObjective { scorer, documents })
    }

    /// The objective at `params` (higher is better; NaN when scoring failed).
    pub fn score(&self, params: &SccParams) -> f64 {
        let voter = SpanClusterConsensus {
            params: *params,
            spans_only: true,
            ..SpanClusterConsensus::default()
        };
        let merged: BTreeMap<String, Vec<PredictedSpan>> = self
            .documents
            .iter()
            .map(|(name, votes)| {
                let spans = voter.vote(votes).spans;
                (
                    name.clone(),
                    spans.into_iter().map(PredictedSpan::from).collect(),
                )
            })
            .collect();
        match self.scorer.score(&merged) {
            Ok(e) => match e.shared_task {
                Some(st) => st.final_score,
                None => (e.span_f1.f1 + e.token_f1) / 2.0,
            },
            Err(_) => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth objective with its optimum at (0.3, 0.6, 0.2, 0.9).
    fn objective(p: &SccParams) -> f64 {
        -((p.min_cluster_iou - 0.3).powi(2)
            + (p.min_pairwise_iou - 0.6).powi(2)
            + (p.min_cluster_support - 0.2).powi(2)
            + (p.min_iou_same_cat - 0.9).powi(2))
    }

    #[test]
    fn default_first_then_improves_and_is_reproducible() {
        let run = |seed| {
            let mut t = Tuner::new(seed);
            t.run(300, 4, |ps| ps.iter().map(objective).collect(), |_| {});
            t
        };
        let a = run(1);
        assert_eq!(a.trials()[0].params, SccParams::default());
        let best = a.best().unwrap();
        assert!(best.score > -0.01, "TPE should get close: {best:?}");
        let random_best = {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            (0..300)
                .map(|_| {
                    objective(&SccParams {
                        min_cluster_iou: rng.random(),
                        min_pairwise_iou: rng.random(),
                        min_cluster_support: rng.random(),
                        min_iou_same_cat: rng.random(),
                    })
                })
                .fold(f64::MIN, f64::max)
        };
        assert!(
            best.score >= random_best,
            "TPE {} vs random search {random_best}",
            best.score
        );
        assert_eq!(run(1).trials(), a.trials());
        assert_ne!(run(2).trials(), a.trials());
    }

    #[test]
    fn resumes_from_earlier_trials() {
        let mut first = Tuner::new(7);
        first.run(50, 5, |ps| ps.iter().map(objective).collect(), |_| {});
        let mut resumed = Tuner::new(8);
        for t in first.trials() {
            resumed.tell(*t);
        }
        resumed.run(80, 5, |ps| ps.iter().map(objective).collect(), |_| {});
        assert_eq!(resumed.trials().len(), 80);
        assert_eq!(&resumed.trials()[..50], first.trials());
        assert_ne!(
            resumed.trials()[50].params,
            SccParams::default(),
            "the default is only tried first"
        );
    }
}
