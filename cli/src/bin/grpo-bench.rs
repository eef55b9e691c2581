//! One GRPO step of a Qwen3.5 snapshot, end to end, with its time split into rollout, scoring,
//! update (the log-probability pass and backward of every completion, the prompt's pass shared)
//! and optimiser (run on the
//! GPU machine by `gpu/tools/gpu-grpo-bench.sh`, which times transformers' `generate` with the
//! same adapter in the same call).
//!
//! ```text
//! grpo-bench --model DIR [--prompt-tokens 3000] [--new-tokens 2048] [--generations 8]
//!            [--steps 2] [--device cuda|cpu] [--dtype bf16|f32] [--compare-unshared]
//! ```
//!
//! The prompt is `--prompt-tokens` random ids (seeded); the policy is the snapshot with a fresh
//! LAMAR GRPO adapter (r 2, α 2, every linear layer), sampled as LAMAR asks (temperature 1,
//! min-p 0.1) with no stop token, so every completion has exactly `--new-tokens` tokens. The
//! snapshot needs no tokenizer: completions are scored as text made of their ids
//! (`t123 t456 …`) by LAMAR's three rewards against the prompt's text, which costs what scoring
//! texts of that many words costs (random texts all score alike, so the advantages are set to
//! ±1 to make the update do its full work). Completions cut at the limit stay in the loss here (every
//! one is cut). The first step pays for start-up and is reported apart; one JSON object per
//! step goes to stdout. A last object (`graph_check`) compares sampling with the adapter through
//! CUDA graphs against eager steps: same draws, their speeds.

#[path = "../bench_args.rs"]
mod bench_args;

use anyhow::{Context, Result, bail};
use clap::Parser;
use lamar_core::grpo::{
    AdvantageOptions, Aggregation, ClipRange, OnRewardError, RewardScale, WeightedReward,
    advantages, score_batch,
};
use lamar_core::reward::{BuiltinReward, Sample};
use lamar_model::qwen35;
use lamar_model::qwen35::FusedKernels;
use lamar_model::sampling::{Sampler, SamplingParams};
use lamar_model::train::gradients::Backward;
use lamar_model::train::grpo::job::GRPO_ADAPTER;
use lamar_model::train::grpo::rollout::sample_group;
use lamar_model::train::grpo::update::{UpdateSettings, policy_update};
use lamar_model::train::lora::{ALL_LINEAR, TrainableLora};
use lamar_model::train::optim::{AdamW, AdamWConfig, clip_factor, global_norm};
use rand::{RngExt, SeedableRng};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Time GRPO steps of a Qwen3.5 snapshot.
#[derive(Parser, Debug)]
struct Args {
    /// The snapshot folder (config.json and safetensors; no tokenizer needed).
    #[arg(long)]
    model: PathBuf,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 3000)]
    prompt_tokens: usize,
    /// Tokens per completion.
    #[arg(long, default_value_t = 2048)]
    new_tokens: usize,
    /// Completions per step.
    #[arg(long, default_value_t = 8)]
    generations: usize,
    /// Steps (the first is start-up); at least 2.
    #[arg(long, default_value_t = 2)]
    steps: usize,
    /// cuda or cpu.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Precision of the frozen model: bf16 or f32.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// In the last step, also run the update without sharing the prompt's pass (one whole
    /// sequence per completion) and report its time and how far its gradients are from the
    /// shared pass's; and once more with attention as candle operations instead of the flash
    /// kernels, for the difference two correct bf16 paths make.
    #[arg(long)]
    compare_unshared: bool,
}

fn as_text(ids: &[u32]) -> String {
    ids.iter()
        .map(|t| format!("t{t}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.steps < 2 || args.generations < 2 {
        bail!("--steps and --generations must be at least 2");
    }
    let device = bench_args::device(&args.device)?;
    let dtype = bench_args::dtype(&args.dtype)?;
    let started = Instant::now();
    let mut model = qwen35::load(&args.model, dtype, &device)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let load_s = started.elapsed().as_secs_f64();
    let vocab = model.config().vocab_size as u32;
    let lora = Arc::new(TrainableLora::init(
        &model,
        &ALL_LINEAR,
        GRPO_ADAPTER,
        3407,
        &device,
    )?);
    model.set_policy_adapter(Some(&lora));
    let vars: Vec<_> = lora.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut optimiser = AdamW::new(
        &vars,
        AdamWConfig {
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
    )?;
    let rewards: Vec<WeightedReward> = [
        BuiltinReward::Fidelity,
        BuiltinReward::TokenF1,
        BuiltinReward::ExactMatchF1,
    ]
    .into_iter()
    .map(|r| WeightedReward {
        reward: Box::new(r),
        weight: 1.0,
    })
    .collect();
    let options = AdvantageOptions {
        group_size: args.generations,
        aggregation: Aggregation::NormalizeThenSum,
        scale: RewardScale::Group,
        weights: vec![1.0; rewards.len()],
    };
    let settings = UpdateSettings {
        clip: ClipRange::default(),
        mask_truncated: false,
        beta: 0.0,
        temperature: 1.0,
        head_chunk: 1024,
        backward: Backward::Recompute,
        share_prompt: true,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.prompt_tokens as u64);
    for step in 0..args.steps {
        let prompt: Vec<u32> = (0..args.prompt_tokens)
            .map(|_| rng.random_range(0..vocab))
            .collect();
        let raw_text = as_text(&prompt);
        device.synchronize()?;
        let t0 = Instant::now();
        let mut sampler = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            min_p: 0.1,
            seed: 42 + step as u64,
        })
        .with_tempered_log_probs();
        let rollouts = sample_group(
            &model,
            &prompt,
            args.generations,
            args.new_tokens,
            &[],
            &mut sampler,
            &device,
            |_| {},
        )?;
        device.synchronize()?;
        let rollout_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let texts: Vec<String> = rollouts.iter().map(|r| as_text(&r.tokens)).collect();
        let samples: Vec<Sample> = texts
            .iter()
            .map(|c| Sample {
                completion: c,
                gold: &raw_text,
                raw_text: &raw_text,
            })
            .collect();
        let scores = score_batch(&rewards, &samples, OnRewardError::Stop)?;
        let mut advantage = advantages(&scores.scores, &options)?.values;
        // Random text earns every completion the same rewards (advantages 0: nothing to
        // back-propagate); the update's cost is the same for any non-zero advantages.
        let forced = advantage.iter().all(|&a| a == 0.0);
        if forced {
            advantage = (0..args.generations)
                .map(|k| if k % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
        }
        let scoring_s = t1.elapsed().as_secs_f64();
        let t2 = Instant::now();
        let update = policy_update(
            &model, &lora, &vars, &prompt, &rollouts, &advantage, &settings,
        )?;
        device.synchronize()?;
        let update_s = t2.elapsed().as_secs_f64();
        // The comparison's time is left out of the step's.
        let mut compared_s = 0.0;
        let unshared = if args.compare_unshared && step + 1 == args.steps {
            let t = Instant::now();
            let plain = UpdateSettings {
                share_prompt: false,
                ..settings
            };
            let other =
                policy_update(&model, &lora, &vars, &prompt, &rollouts, &advantage, &plain)?;
            device.synchronize()?;
            let seconds = t.elapsed().as_secs_f64();
            // The rounding floor: the same whole-sequence update with attention as blocks of
            // candle operations (as the shared update's continuations run it) instead of the
            // flash kernels. Two correct bf16 paths differ by this much.
            model.set_fused_kernels(FusedKernels {
                flash: false,
                ..FusedKernels::ALL
            });
            let blocks =
                policy_update(&model, &lora, &vars, &prompt, &rollouts, &advantage, &plain)?;
            model.set_fused_kernels(FusedKernels::ALL);
            device.synchronize()?;
            compared_s = t.elapsed().as_secs_f64();
            Some(serde_json::json!({
                "update_s": seconds,
                "grad_relative_difference": relative_difference(&update.grads, &other.grads)?,
                "whole_flash_vs_blocks_relative_difference":
                    relative_difference(&blocks.grads, &other.grads)?,
                "logprob_drift": other.max_drift,
            }))
        } else {
            None
        };
        let t3 = Instant::now();
        let norm = global_norm(&update.grads)?;
        optimiser.step_scaled(&vars, &update.grads, 5e-5, clip_factor(norm, 0.2))?;
        device.synchronize()?;
        let optimiser_s = t3.elapsed().as_secs_f64();
        let total = t0.elapsed().as_secs_f64() - compared_s;
        let new_tokens: usize = rollouts.iter().map(|r| r.tokens.len()).sum();
        println!(
            "{}",
            serde_json::json!({
                "step": step + 1,
                "startup": step == 0,
                "load_s": load_s,
                "prompt_tokens": args.prompt_tokens,
                "generations": args.generations,
                "new_tokens": new_tokens,
                "rollout_s": rollout_s,
                "rollout_tok_per_s": new_tokens as f64 / rollout_s,
                "graph_failure": model.graph_failure(),
                "scoring_s": scoring_s,
                "update_s": update_s,
                "optimiser_s": optimiser_s,
                "step_s": total,
                "loss": update.loss,
                "grad_norm": norm,
                "logprob_drift": update.max_drift,
                "advantages_forced": forced,
                "unshared": unshared,
            })
        );
    }
    println!("{}", graph_check(&mut model, &lora, &args, &device)?);
    Ok(())
}

/// `‖a − b‖ / ‖b‖` over all the gradients.
fn relative_difference(a: &[candle_core::Tensor], b: &[candle_core::Tensor]) -> Result<f64> {
    let difference: Vec<candle_core::Tensor> = a
        .iter()
        .zip(b)
        .map(|(a, b)| a - b)
        .collect::<candle_core::Result<_>>()?;
    Ok(global_norm(&difference)? / global_norm(b)?)
}

/// Sampling with the policy's adapter through CUDA graphs against eager steps: the same seed
/// must draw the same tokens with the same log-probabilities, and the graphed steps should be
/// faster. The adapter's `B` matrices are first set to random values (a fresh or briefly trained
/// adapter barely changes the logits), and the log-probabilities without the adapter show that
/// the graphs do apply it.
fn graph_check(
    model: &mut lamar_model::qwen35::Qwen35Model,
    lora: &TrainableLora,
    args: &Args,
    device: &candle_core::Device,
) -> Result<serde_json::Value> {
    for (name, var) in lora.named_vars() {
        if name.ends_with("lora_B.weight") {
            let noise = candle_core::Tensor::randn(0f32, 0.02, var.dims(), device)?;
            var.set(&noise)?;
        }
    }
    let vocab = model.config().vocab_size as u32;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let prompt: Vec<u32> = (0..256).map(|_| rng.random_range(0..vocab)).collect();
    let new_tokens = 128;
    let run_at = |model: &lamar_model::qwen35::Qwen35Model,
                  temperature: f64|
     -> Result<(f64, Vec<Vec<u32>>, Vec<f32>)> {
        let mut sampler = Sampler::new(SamplingParams {
            temperature,
            top_p: 1.0,
            min_p: 0.1,
            seed: 11,
        })
        .with_tempered_log_probs();
        device.synchronize()?;
        let t0 = Instant::now();
        let rollouts = sample_group(
            model,
            &prompt,
            args.generations,
            new_tokens,
            &[],
            &mut sampler,
            device,
            |_| {},
        )?;
        device.synchronize()?;
        let tokens_per_s = (args.generations * new_tokens) as f64 / t0.elapsed().as_secs_f64();
        let log_probs = rollouts.iter().flat_map(|r| r.log_probs.clone()).collect();
        Ok((
            tokens_per_s,
            rollouts.into_iter().map(|r| r.tokens).collect(),
            log_probs,
        ))
    };
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let run = |model: &lamar_model::qwen35::Qwen35Model| run_at(model, 1.0);
    run(model)?; // warm-up: kernels loaded, first capture
    let (graphed_rate, graphed_tokens, graphed) = run(model)?;
    // Greedy decoding chooses inside the graph: the step's own speed, without sampling's.
    let (greedy_rate, _, _) = run_at(model, 0.0)?;
    model.set_cuda_graphs(false);
    let (eager_rate, eager_tokens, eager) = run(model)?;
    model.set_cuda_graphs(true);
    // Without the adapter the same seed draws other tokens: the random adapter matters, so
    // equal graphed and eager draws mean the graphs apply it.
    model.set_policy_adapter(None);
    let (_, plain_tokens, _) = run(model)?;
    model.set_policy_adapter(Some(lora));
    Ok(serde_json::json!({
        "graph_check": {
            "rows": args.generations,
            "new_tokens": new_tokens,
            "graphed_tok_per_s": graphed_rate,
            "eager_tok_per_s": eager_rate,
            "greedy_graphed_tok_per_s": greedy_rate,
            "same_tokens": graphed_tokens == eager_tokens,
            // Rows agree until a draw falls on a near-tie that rounding decides differently.
            "common_prefix": graphed_tokens
                .iter()
                .zip(&eager_tokens)
                .map(|(g, e)| g.iter().zip(e).take_while(|(x, y)| x == y).count())
                .collect::<Vec<_>>(),
            "max_logprob_diff": max_diff(&graphed, &eager),
            "same_tokens_without_adapter": graphed_tokens == plain_tokens,
            "graph_failure": model.graph_failure(),
        }
    }))
}
