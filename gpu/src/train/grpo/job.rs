//! One whole GRPO run, as `lamar train grpo` starts it: a snapshot (with Model 1's adapter, or
//! Model 1 merged), training rows and rewards in, a new adapter folder out.
//!
//! [`GrpoJob::run`] checks every row, renders each prompt exactly as the DFT model was trained
//! on it (the task prompt filled with the raw text, the chat template's generation prompt with
//! thinking off), loads the frozen model, makes a new small adapter (LAMAR: r 2, α 2) or
//! continues the last checkpoint, and then, one prompt at a time in a seeded order:
//!
//! 1. samples a group of completions from the policy as it stands ([`super::rollout`]);
//! 2. scores them with every reward ([`lamar_core::grpo::score_batch`]); a failing reward stops
//!    the run ([`TrainError::Reward`], the last checkpoint untouched) or counts as missing;
//! 3. turns the scores into advantages ([`lamar_core::grpo::advantages`], GDPO by default) and,
//!    with dynamic sampling, drops a group whose rewards are all equal (it teaches nothing) and
//!    goes on to the next prompt;
//! 4. computes DAPO's loss and its gradient ([`super::update`]), clips the global norm and
//!    takes an AdamW step at a constant learning rate;
//! 5. logs the step (`OUT/metrics.jsonl`) and every completion (`OUT/rollouts.jsonl`), and
//!    checkpoints every `checkpoint_every` steps with the position in the data.
//!
//! Each prompt's sampler is seeded with the run's seed plus the prompt's position, so a resumed
//! run draws what an uninterrupted one would have. At the end: the adapter in PEFT's format and
//! the curves (`OUT/rewards.svg`, `OUT/loss.svg`).

use super::report::{GrpoStepReport, NamedScore, RolloutRecord, loss_curve, reward_curves};
use super::rollout::{Rollout, sample_group};
use super::update::{UpdateSettings, policy_update};
use crate::chat::ChatTemplate;
use crate::lora::LoraAdapter;
use crate::qwen35;
use crate::sampling::{Sampler, SamplingParams};
use crate::tokenizer::TextTokenizer;
use crate::train::checkpoint::{Checkpoints, Fingerprint};
use crate::train::data::Example;
use crate::train::gradients::Backward;
use crate::train::job::TrainError;
use crate::train::lora::{ALL_LINEAR, LoraShape, TrainableLora};
use crate::train::metrics::{MetricsLog, read_metrics};
use crate::train::optim::{AdamW, AdamWConfig, clip_factor, global_norm};
use candle_core::{DType, Device};
use lamar_core::formats::rows::TrainingRow;
use lamar_core::formats::training::check_tagged_row;
use lamar_core::grpo::{
    AdvantageOptions, Aggregation, ClipRange, OnRewardError, RewardScale, WeightedReward,
    advantages, mean, sample_std, score_batch,
};
use lamar_core::prompt::TaskPrompt;
use lamar_core::reward::Sample;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// How a GRPO run samples, scores and learns. The default is LAMAR's recipe
/// (`lamar-spec.md` §6.3).
#[derive(Debug, Clone, PartialEq)]
pub struct GrpoSettings {
    /// Completions per prompt (`G`, 8); one prompt's group makes one optimiser step.
    pub generations: usize,
    /// The rollouts' sampling (temperature 1.0, min-p 0.1, top-p 1.0, seed 42). Each prompt's
    /// sampler is seeded with `seed + its position in the run`.
    pub sampling: SamplingParams,
    /// Longest completion in tokens (24,576 − 10,029 = 14,547).
    pub max_completion: usize,
    /// How the rewards become one advantage (GDPO's normalise-then-sum).
    pub aggregation: Aggregation,
    /// The divisor of [`Aggregation::SumThenNormalize`].
    pub scale: RewardScale,
    /// Drop groups whose rewards are all equal and go on to the next prompt (DAPO's dynamic
    /// sampling; off in LAMAR).
    pub dynamic_sampling: bool,
    /// What a failing reward does.
    pub on_reward_error: OnRewardError,
    /// The loss: clip range, masking of cut completions, KL penalty, backward.
    pub update: UpdateSettings,
    /// AdamW's constant learning rate (5e-5).
    pub learning_rate: f64,
    /// Global gradient norm limit (0.2).
    pub max_grad_norm: f64,
    /// Passes over the prompts (1).
    pub epochs: usize,
    /// Seed of the new adapter and of the prompt order (3407).
    pub seed: u64,
    /// Stop after this many optimiser steps (the rest can be resumed); `None` runs to the end.
    pub stop_after_steps: Option<usize>,
}

impl Default for GrpoSettings {
    fn default() -> Self {
        GrpoSettings {
            generations: 8,
            sampling: SamplingParams {
                temperature: 1.0,
                top_p: 1.0,
                min_p: 0.1,
                seed: 42,
            },
            max_completion: 14_547,
            aggregation: Aggregation::NormalizeThenSum,
            scale: RewardScale::Group,
            dynamic_sampling: false,
            on_reward_error: OnRewardError::Stop,
            update: UpdateSettings {
                clip: ClipRange::default(),
                mask_truncated: true,
                beta: 0.0,
                temperature: 1.0,
                head_chunk: 1024,
                backward: Backward::Recompute,
                share_prompt: true,
            },
            learning_rate: 5e-5,
            max_grad_norm: 0.2,
            epochs: 1,
            seed: 3407,
            stop_after_steps: None,
        }
    }
}

/// The new adapter of LAMAR's Model 2: rank 2, alpha 2, no rsLoRA.
pub const GRPO_ADAPTER: LoraShape = LoraShape {
    rank: 2,
    alpha: 2.0,
    rslora: false,
};

/// A GRPO run.
#[derive(Debug, Clone)]
pub struct GrpoJob {
    /// The frozen model's snapshot folder (Model 1 merged, or the base model).
    pub model: PathBuf,
    /// Model 1's adapter, merged into the base weights in memory (`None`: `model` is already
    /// the model to start from).
    pub adapter: Option<PathBuf>,
    /// Folder for the new adapter, logs, curves and checkpoint.
    pub out: PathBuf,
    /// The task prompt the raw text is filled into (the one the DFT model was trained with).
    pub prompt: TaskPrompt,
    /// The new adapter's rank, alpha and scaling ([`GRPO_ADAPTER`]).
    pub shape: LoraShape,
    /// Sampling, scoring and learning.
    pub settings: GrpoSettings,
    /// Optimiser steps between checkpoints (10).
    pub checkpoint_every: usize,
    /// Continue from `OUT/checkpoint` when there is one.
    pub resume: bool,
    /// Where to train.
    pub device: Device,
    /// Precision of the frozen model.
    pub dtype: DType,
}

/// What a run reports while it goes (every method does nothing by default).
pub trait GrpoProgress {
    /// The run will sample `prompts` groups in all, `done` of them before this start.
    fn started(&mut self, _prompts: usize, _done: usize) {}
    /// A decoding step made `tokens` completion tokens.
    fn tokens(&mut self, _tokens: usize) {}
    /// A reward failed for a group and counts as missing (`OnRewardError::Skip`).
    fn reward_skipped(&mut self, _reward: &str, _error: &str) {}
    /// A group was dropped for carrying no signal (dynamic sampling).
    fn dropped(&mut self, _prompt_id: &str) {}
    /// An optimiser step was taken (and logged).
    fn step(&mut self, _report: &GrpoStepReport) {}
}

/// Reports nothing.
impl GrpoProgress for () {}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct GrpoOutcome {
    /// Prompts (training rows).
    pub prompts: usize,
    /// The step the run resumed after (0 for a fresh run).
    pub resumed_at: usize,
    /// Every step of the run, resumed ones included, as logged.
    pub reports: Vec<GrpoStepReport>,
    /// The reward curves.
    pub rewards_curve: PathBuf,
    /// The loss curve.
    pub loss_curve: PathBuf,
}

/// One prompt: its row and its tokens.
struct Prompt<'a> {
    row: &'a TrainingRow,
    ids: Vec<u32>,
}

impl GrpoJob {
    /// Trains on `rows` with `rewards` (scored in this order, each with its weight).
    pub fn run(
        &self,
        rows: &[TrainingRow],
        rewards: &[WeightedReward],
        progress: &mut impl GrpoProgress,
    ) -> Result<GrpoOutcome, TrainError> {
        let s = &self.settings;
        if s.update.temperature != s.sampling.temperature {
            return Err(TrainError::Setting(format!(
                "the loss's temperature {} is not the sampling temperature {}",
                s.update.temperature, s.sampling.temperature
            )));
        }
        if self.shape.rank == 0 || s.generations == 0 || s.epochs == 0 || s.max_completion == 0 {
            return Err(TrainError::Setting(
                "the rank, generations, epochs and completion limit must be at least 1".into(),
            ));
        }
        if rewards.is_empty() {
            return Err(TrainError::Setting("GRPO needs at least one reward".into()));
        }
        if rows.is_empty() {
            return Err(TrainError::NoRows);
        }
        let tokenizer = TextTokenizer::from_snapshot(&self.model)?;
        let template = ChatTemplate::from_snapshot(&self.model)?;
        let prompts = rows
            .iter()
            .enumerate()
            .map(|(k, row)| {
                let bad = |problem| TrainError::BadTarget {
                    row: k + 1,
                    file_id: row.file_id.clone(),
                    problem,
                };
                check_tagged_row(row).map_err(bad)?;
                let text = template.generation_prompt(&self.prompt.fill(&row.raw_text))?;
                Ok(Prompt {
                    row,
                    ids: tokenizer.encode(&text)?,
                })
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        let merged = match &self.adapter {
            Some(dir) => Some(LoraAdapter::load(dir, true, &self.device)?),
            None => None,
        };
        let mut model =
            qwen35::load_with_adapter(&self.model, merged.as_ref(), self.dtype, &self.device)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TrainError::Io { path, source }
        };
        std::fs::create_dir_all(&self.out).map_err(io(&self.out))?;
        let checkpoints = Checkpoints {
            dir: self.out.clone(),
            every: self.checkpoint_every,
            resume: self.resume,
        };
        let resuming = self.resume && checkpoints.exists();
        let lora = Arc::new(if resuming {
            let last = checkpoints.last();
            TrainableLora::from_peft(&last, &model, &self.device)
                .map_err(|source| TrainError::Resume { path: last, source })?
        } else {
            TrainableLora::init(&model, &ALL_LINEAR, self.shape, s.seed, &self.device)?
        });
        model.set_policy_adapter(Some(&lora));
        let vars: Vec<_> = lora.named_vars().into_iter().map(|(_, v)| v).collect();
        let mut optimiser = AdamW::new(
            &vars,
            AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
        )?;
        let fingerprint = fingerprint(&prompts, rewards, s, self.shape);
        let resumed_at = checkpoints.read(&mut optimiser, &fingerprint, &self.device)?;
        let mut position = if resumed_at > 0 {
            checkpoints
                .value("position")
                .ok_or_else(|| TrainError::Resume {
                    path: checkpoints.last(),
                    source: candle_core::Error::Msg("the checkpoint has no data position".into()),
                })? as usize
        } else {
            0
        };
        let order = prompt_order(prompts.len(), s.epochs, s.seed);
        let resumed = (resumed_at > 0).then_some(resumed_at);
        let mut metrics =
            MetricsLog::<GrpoStepReport>::open(&self.out.join("metrics.jsonl"), resumed)?;
        let mut rollout_log =
            MetricsLog::<RolloutRecord>::open(&self.out.join("rollouts.jsonl"), resumed)?;
        progress.started(order.len(), position);
        let names: Vec<String> = rewards.iter().map(|r| r.reward.name().into()).collect();
        let options = AdvantageOptions {
            group_size: s.generations,
            aggregation: s.aggregation,
            scale: s.scale,
            weights: rewards.iter().map(|r| r.weight).collect(),
        };
        let stop = tokenizer.stop_tokens().to_vec();
        let (mut step, mut dropped) = (resumed_at, 0);
        while position < order.len() && s.stop_after_steps.is_none_or(|n| step < n) {
            let prompt = &prompts[order[position]];
            let started = Instant::now();
            let mut sampler = Sampler::new(SamplingParams {
                seed: s.sampling.seed.wrapping_add(position as u64),
                ..s.sampling
            })
            .with_tempered_log_probs();
            let rollouts = sample_group(
                &model,
                &prompt.ids,
                s.generations,
                s.max_completion,
                &stop,
                &mut sampler,
                &self.device,
                |n| progress.tokens(n),
            )?;
            let rollout_seconds = started.elapsed().as_secs_f64();
            let texts = rollouts
                .iter()
                .map(|r| tokenizer.decode(&r.tokens, true))
                .collect::<Result<Vec<_>, _>>()?;
            let scoring_started = Instant::now();
            let samples: Vec<Sample> = texts
                .iter()
                .map(|completion| Sample {
                    completion,
                    gold: &prompt.row.gold_span,
                    raw_text: &prompt.row.raw_text,
                })
                .collect();
            let scores = score_batch(rewards, &samples, s.on_reward_error).map_err(|source| {
                TrainError::Reward {
                    step: step + 1,
                    prompt_id: prompt.row.file_id.clone(),
                    source,
                }
            })?;
            for (reward, error) in &scores.skipped {
                progress.reward_skipped(reward, error);
            }
            let scoring_seconds = scoring_started.elapsed().as_secs_f64();
            let advantage = advantages(&scores.scores, &options)
                .map_err(|e| TrainError::Setting(e.to_string()))?;
            position += 1;
            let records = |in_loss: &dyn Fn(&Rollout) -> bool, dropped: bool| {
                rollouts
                    .iter()
                    .zip(&texts)
                    .zip(&scores.scores)
                    .zip(&advantage.values)
                    .enumerate()
                    .map(|(index, (((r, text), row), &advantage))| RolloutRecord {
                        step: step + 1,
                        prompt_id: prompt.row.file_id.clone(),
                        index,
                        completion: text.clone(),
                        tokens: r.tokens.len(),
                        finished: r.finished,
                        in_loss: in_loss(r),
                        rewards: named(&names, row),
                        advantage,
                        dropped,
                    })
                    .collect::<Vec<_>>()
            };
            if s.dynamic_sampling && advantage.zero_variance[0] {
                for record in records(&|_| false, true) {
                    rollout_log.append(&record)?;
                }
                dropped += 1;
                progress.dropped(&prompt.row.file_id);
                continue;
            }
            let update_started = Instant::now();
            let update = policy_update(
                &model,
                &lora,
                &vars,
                &prompt.ids,
                &rollouts,
                &advantage.values,
                &s.update,
            )?;
            let grad_norm = global_norm(&update.grads)?;
            let clip = clip_factor(grad_norm, s.max_grad_norm);
            optimiser.step_scaled(&vars, &update.grads, s.learning_rate, clip)?;
            let update_seconds = update_started.elapsed().as_secs_f64();
            let mask = s.update.mask_truncated;
            for record in records(&|r| !r.tokens.is_empty() && (r.finished || !mask), false) {
                rollout_log.append(&record)?;
            }
            step += 1;
            let completion_tokens: usize = rollouts.iter().map(|r| r.tokens.len()).sum();
            let totals: Vec<f64> = scores
                .scores
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(rewards)
                        .filter_map(|(v, r)| v.map(|v| v * r.weight))
                        .sum()
                })
                .collect();
            let report = GrpoStepReport {
                step,
                total_steps: order.len(),
                epoch: (position - 1) / prompts.len(),
                prompt_id: prompt.row.file_id.clone(),
                rewards: names
                    .iter()
                    .enumerate()
                    .map(|(k, name)| NamedScore {
                        name: name.clone(),
                        value: mean(scores.scores.iter().filter_map(|row| row[k])),
                    })
                    .collect(),
                reward: mean(totals.iter().copied()).unwrap_or(0.0),
                reward_std: sample_std(&totals),
                loss: update.loss,
                grad_norm,
                learning_rate: s.learning_rate,
                completion_tokens: completion_tokens as f64 / rollouts.len() as f64,
                truncated: rollouts.iter().filter(|r| !r.finished).count(),
                in_loss: update.completions_in_loss,
                clipped_fraction: update.clipped_fraction,
                kl: update.kl,
                logprob_drift: update.max_drift,
                dropped_groups: std::mem::take(&mut dropped),
                rollout_seconds,
                scoring_seconds,
                update_seconds,
                rollout_tokens_per_second: completion_tokens as f64 / rollout_seconds.max(1e-9),
                position,
            };
            metrics.append(&report)?;
            progress.step(&report);
            if step % self.checkpoint_every.max(1) == 0 || position == order.len() {
                checkpoints.write_with(
                    &lora,
                    &optimiser,
                    step,
                    &fingerprint,
                    &[("position", position as u64)],
                )?;
            }
        }
        lora.save_peft(&self.out, &self.model.display().to_string())?;
        let reports = read_metrics::<GrpoStepReport>(metrics.path())?;
        let title = format!("GRPO of {}", self.model.display());
        let rewards_curve = self.out.join("rewards.svg");
        std::fs::write(&rewards_curve, reward_curves(&reports, &title))
            .map_err(io(&rewards_curve))?;
        let loss_path = self.out.join("loss.svg");
        std::fs::write(&loss_path, loss_curve(&reports, &title)).map_err(io(&loss_path))?;
        Ok(GrpoOutcome {
            prompts: prompts.len(),
            resumed_at,
            reports,
            rewards_curve,
            loss_curve: loss_path,
        })
    }
}

/// The prompts' positions for every epoch, one after another: each epoch a fresh shuffle of
/// one seeded stream (as the DFT trainer orders its examples).
pub fn prompt_order(prompts: usize, epochs: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut order = Vec::with_capacity(prompts * epochs);
    for _ in 0..epochs {
        let mut epoch: Vec<usize> = (0..prompts).collect();
        epoch.shuffle(&mut rng);
        order.extend(epoch);
    }
    order
}

/// What a checkpoint must have been made with to be continued: the prompts' tokens, the
/// golds, the rewards and every setting but where to stop and what a failing reward does (a
/// run stopped by a reward can go on skipping it).
fn fingerprint(
    prompts: &[Prompt],
    rewards: &[WeightedReward],
    settings: &GrpoSettings,
    shape: LoraShape,
) -> Fingerprint {
    let examples: Vec<Example> = prompts
        .iter()
        .map(|p| Example {
            ids: p.ids.clone(),
            response_start: p.ids.len(),
            truncated: false,
        })
        .collect();
    let golds: Vec<&str> = prompts.iter().map(|p| p.row.gold_span.as_str()).collect();
    let rewards: Vec<(&str, f64)> = rewards
        .iter()
        .map(|r| (r.reward.name(), r.weight))
        .collect();
    let settings = GrpoSettings {
        stop_after_steps: None,
        on_reward_error: OnRewardError::Stop,
        ..settings.clone()
    };
    Fingerprint::of(&examples, &(golds, rewards, settings, shape))
}

/// Each reward's value under its name.
fn named(names: &[String], values: &[Option<f64>]) -> Vec<NamedScore> {
    names
        .iter()
        .zip(values)
        .map(|(name, &value)| NamedScore {
            name: name.clone(),
            value,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_visits_every_prompt_once_per_epoch_and_is_seeded() {
        let order = prompt_order(7, 3, 5);
        assert_eq!(order.len(), 21);
        for epoch in order.chunks(7) {
            let mut seen = epoch.to_vec();
            seen.sort_unstable();
            assert_eq!(seen, (0..7).collect::<Vec<_>>());
        }
        assert_eq!(order, prompt_order(7, 3, 5));
        assert_ne!(order, prompt_order(7, 3, 6));
        assert_ne!(order[..7], order[7..14], "each epoch is shuffled afresh");
    }
}
