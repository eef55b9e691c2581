//! Whole GRPO runs (`GrpoJob`) on the tiny copier (`tests/golden/qwen35_tiny_copier`, a tiny
//! Qwen3.5 pre-trained to copy the note it is given): sampled at a high temperature, it runs on
//! past the note, and a reward for brevity must rise as GRPO teaches it to stop. Also: a resumed run equals an uninterrupted one, and a failing reward
//! stops the run with its last checkpoint intact, or counts as missing when asked.

use candle_core::{DType, Device};
use lamar_core::formats::rows::TrainingRow;
use lamar_core::grpo::{OnRewardError, WeightedReward};
use lamar_core::prompt::TaskPrompt;
use lamar_core::reward::{Reward, RewardError, Sample};
use lamar_model::sampling::SamplingParams;
use lamar_model::train::grpo::job::{GrpoJob, GrpoSettings};
use lamar_model::train::grpo::report::{GrpoStepReport, RolloutRecord};
use lamar_model::train::job::TrainError;
use lamar_model::train::lora::LoraShape;
use lamar_model::train::metrics::read_metrics;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn copier() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/qwen35_tiny_copier")
}

/// Short notes with one tagged decision each.
fn rows() -> Vec<TrainingRow> {
    [
        ("a", "Started aspirin for chest pain.", "Started aspirin"),
        ("b", "Will obtain CT of the head.", "obtain CT of the head"),
        (
            "c",
            "Metoprolol was held for bradycardia.",
            "Metoprolol was held",
        ),
        (
            "d",
            "Patient to follow up with cardiology.",
            "follow up with cardiology",
        ),
    ]
    .into_iter()
    .map(|(id, raw, span)| {
        let start = raw.find(span).unwrap();
        let gold = format!(
            "{}<drug_decision>{span}</drug_decision>{}",
            &raw[..start],
            &raw[start + span.len()..]
        );
        TrainingRow {
            file_id: id.into(),
            raw_text: raw.into(),
            gold_span: gold,
            gold_offsets: Vec::new(),
        }
    })
    .collect()
}

/// Brevity: minus the completion's length in characters, over 100. The copier, sampled hot,
/// rambles on past the note (a sampled completion runs 20 to 100 characters); GRPO must
/// teach it to end its turn sooner.
struct Brevity;

impl Reward for Brevity {
    fn name(&self) -> &str {
        "brevity"
    }
    fn score(&self, samples: &[Sample<'_>]) -> Result<Vec<f64>, RewardError> {
        Ok(samples
            .iter()
            .map(|s| -(s.completion.chars().count() as f64) / 100.0)
            .collect())
    }
}

/// Fails from its `fail_from`-th call on (1-based).
struct Flaky {
    calls: AtomicUsize,
    fail_from: usize,
}

impl Reward for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn score(&self, samples: &[Sample<'_>]) -> Result<Vec<f64>, RewardError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_from {
            return Err(RewardError::Failed("the reward fell over".into()));
        }
        Ok(samples.iter().map(|s| s.completion.len() as f64).collect())
    }
}

fn job(out: &Path, epochs: usize) -> GrpoJob {
    let mut settings = GrpoSettings {
        generations: 6,
        max_completion: 24,
        learning_rate: 1e-2,
        max_grad_norm: 1.0,
        epochs,
        ..GrpoSettings::default()
    };
    settings.sampling = SamplingParams {
        temperature: 1.6,
        top_p: 1.0,
        min_p: 0.0,
        seed: 42,
    };
    settings.update.mask_truncated = false;
    settings.update.temperature = 1.6;
    GrpoJob {
        model: copier(),
        adapter: None,
        out: out.to_path_buf(),
        prompt: TaskPrompt::from_text("Tag the decisions:\n{raw_text}", "test").unwrap(),
        shape: LoraShape {
            rank: 4,
            alpha: 8.0,
            rslora: false,
        },
        settings,
        checkpoint_every: 2,
        resume: false,
        device: Device::Cpu,
        dtype: DType::F32,
    }
}

fn copy_reward() -> Vec<WeightedReward> {
    vec![WeightedReward {
        reward: Box::new(Brevity),
        weight: 1.0,
    }]
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn grpo_raises_the_reward_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = job(dir.path(), 6)
        .run(&rows(), &copy_reward(), &mut ())
        .unwrap();
    let reports = &outcome.reports;
    assert_eq!(reports.len(), 24);
    let early = mean(reports[..6].iter().map(|r| r.reward));
    let late = mean(reports[18..].iter().map(|r| r.reward));
    assert!(
        late > early + 0.2,
        "mean reward {early:.3} in the first six steps, {late:.3} in the last six"
    );
    // The on-policy check: the sampler's log-probabilities are the training pass's.
    let drift = reports.iter().map(|r| r.logprob_drift).fold(0.0, f64::max);
    assert!(drift < 1e-4, "log-probabilities drift by {drift}");
    let rollouts: Vec<RolloutRecord> = read_metrics(&dir.path().join("rollouts.jsonl")).unwrap();
    assert_eq!(rollouts.len(), 24 * 6);
    assert!(dir.path().join("adapter_model.safetensors").exists());
    assert!(dir.path().join("rewards.svg").exists());
}

/// The reports without their timings.
fn untimed(mut r: GrpoStepReport) -> GrpoStepReport {
    r.rollout_seconds = 0.0;
    r.scoring_seconds = 0.0;
    r.update_seconds = 0.0;
    r.rollout_tokens_per_second = 0.0;
    r
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let whole = tempfile::tempdir().unwrap();
    let full = job(whole.path(), 1)
        .run(&rows(), &copy_reward(), &mut ())
        .unwrap();
    let parts = tempfile::tempdir().unwrap();
    let mut first = job(parts.path(), 1);
    first.settings.stop_after_steps = Some(2);
    let cut = first.run(&rows(), &copy_reward(), &mut ()).unwrap();
    assert_eq!(cut.reports.len(), 2);
    let mut rest = job(parts.path(), 1);
    rest.resume = true;
    let resumed = rest.run(&rows(), &copy_reward(), &mut ()).unwrap();
    assert_eq!(resumed.resumed_at, 2);
    let a: Vec<_> = full.reports.into_iter().map(untimed).collect();
    let b: Vec<_> = resumed.reports.into_iter().map(untimed).collect();
    assert_eq!(a, b);
    let adapter = |d: &Path| std::fs::read(d.join("adapter_model.safetensors")).unwrap();
    assert_eq!(adapter(whole.path()), adapter(parts.path()));
    // Other settings are refused.
    let mut other = job(parts.path(), 1);
    other.resume = true;
    other.settings.learning_rate = 1e-3;
    assert!(other.run(&rows(), &copy_reward(), &mut ()).is_err());
}

#[test]
fn a_failing_reward_stops_the_run_with_its_checkpoint_intact_or_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let rewards = |on: usize| {
        vec![
            WeightedReward {
                reward: Box::new(Brevity),
                weight: 1.0,
            },
            WeightedReward {
                reward: Box::new(Flaky {
                    calls: AtomicUsize::new(0),
                    fail_from: on,
                }),
                weight: 0.5,
            },
        ]
    };
    let err = job(dir.path(), 2)
        .run(&rows(), &rewards(4), &mut ())
        .unwrap_err();
    match &err {
        TrainError::Reward {
            step, source: e, ..
        } => {
            assert_eq!(*step, 4);
            assert_eq!(e.reward, "flaky");
        }
        other => panic!("expected a reward error, got {other}"),
    }
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("checkpoint/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["step"], 2);
    assert_eq!(state["position"], 2);
    let logged: Vec<GrpoStepReport> = read_metrics(&dir.path().join("metrics.jsonl")).unwrap();
    assert_eq!(logged.len(), 3);
    // Skipping: the run goes on; the failing reward is missing from the fourth step on.
    let mut skipping = job(dir.path(), 2);
    skipping.settings.on_reward_error = OnRewardError::Skip;
    let done = skipping.run(&rows(), &rewards(4), &mut ()).unwrap();
    assert_eq!(done.reports.len(), 8);
    let flaky = |r: &GrpoStepReport| r.rewards[1].value;
    assert!(done.reports[..3].iter().all(|r| flaky(r).is_some()));
    assert!(done.reports[3..].iter().all(|r| flaky(r).is_none()));
}
