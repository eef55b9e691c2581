//! GRPO on the tiny random model (issue 19): the sampler's log-probabilities, taken by cached
//! decoding with the policy adapter applied unmerged, equal the training pass's recomputed
//! ones (the on-policy ratio is 1), and a group with advantages gives every adapter variable
//! that the tokens reach a gradient; the update with the prompt's pass shared gives the
//! gradients of the update that runs every sequence whole.

mod common;

use candle_core::{DType, Device, Tensor};
use common::golden;
use lamar_core::grpo::ClipRange;
use lamar_model::qwen35;
use lamar_model::sampling::{Sampler, SamplingParams};
use lamar_model::train::gradients::Backward;
use lamar_model::train::grpo::rollout::sample_group;
use lamar_model::train::grpo::update::{UpdateSettings, policy_update};
use lamar_model::train::lora::{ALL_LINEAR, LoraShape, TrainableLora};
use std::sync::Arc;

#[test]
fn sampled_log_probabilities_match_the_training_pass_and_gradients_flow() {
    let device = Device::Cpu;
    let mut model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let shape = LoraShape {
        rank: 4,
        alpha: 8.0,
        rslora: false,
    };
    let lora = Arc::new(TrainableLora::init(&model, &ALL_LINEAR, shape, 3, &device).unwrap());
    // A fresh adapter changes nothing (B = 0): give every B small values so that it matters.
    for (name, var) in lora.named_vars() {
        if name.ends_with("lora_B.weight") {
            let dims = var.dims().to_vec();
            var.set(&Tensor::randn(0f32, 0.05, dims, &device).unwrap())
                .unwrap();
        }
    }
    model.set_policy_adapter(Some(&lora));
    let prompt: Vec<u32> = (0..40u32).map(|k| (k * 37 + 11) % 256).collect();
    let mut sampler = Sampler::new(SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
        min_p: 0.1,
        seed: 42,
    });
    let rollouts =
        sample_group(&model, &prompt, 4, 12, &[], &mut sampler, &device, |_| {}).unwrap();
    assert_eq!(rollouts.len(), 4);
    assert!(rollouts.iter().all(|r| r.tokens.len() == 12 && !r.finished));
    let vars: Vec<_> = lora.named_vars().into_iter().map(|(_, v)| v).collect();
    let settings = UpdateSettings {
        clip: ClipRange::default(),
        mask_truncated: false,
        beta: 0.0,
        temperature: 1.0,
        head_chunk: 7,
        backward: Backward::Recompute,
        share_prompt: true,
    };
    let advantages = [1.0, -0.5, 0.25, -0.75];
    let update_with = |settings: &UpdateSettings| {
        policy_update(
            &model,
            &lora,
            &vars,
            &prompt,
            &rollouts,
            &advantages,
            settings,
        )
        .unwrap()
    };
    let update = update_with(&settings);
    assert!(
        update.max_drift < 1e-4,
        "sampled vs recomputed log-probabilities differ by {}",
        update.max_drift
    );
    assert_eq!((update.tokens, update.completions_in_loss), (48, 4));
    assert_eq!(update.clipped_fraction, 0.0);
    let reached = update
        .grads
        .iter()
        .filter(|g| {
            g.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        })
        .count();
    assert!(
        reached > vars.len() / 2,
        "{reached} of {} variables",
        vars.len()
    );
    // Masking truncated completions leaves nothing in the loss here (none ended).
    let masked = UpdateSettings {
        mask_truncated: true,
        ..settings
    };
    let none = update_with(&masked);
    assert_eq!((none.tokens, none.completions_in_loss), (0, 0));
    // With a KL penalty against the adapter-off model, the estimate is positive.
    let kl = UpdateSettings {
        beta: 0.1,
        ..settings
    };
    let with_kl = update_with(&kl);
    assert!(with_kl.kl.unwrap() > 0.0);
}

/// The largest `|a − b|` over all values, relative to the largest `|b|`.
fn max_relative(a: &Tensor, b: &Tensor) -> f32 {
    let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
    let size = b.abs().unwrap().max_all().unwrap();
    diff.to_scalar::<f32>().unwrap() / size.to_scalar::<f32>().unwrap().max(1e-30)
}

/// The prompt's pass shared by the group (its keys, values, convolution histories and states
/// handed to each completion, their gradients handed back) gives the gradients of running
/// each prompt + completion whole, and the same log-probabilities. The prompt spans three
/// chunks of the delta rule and the completions differ in length (one within a chunk, one
/// across a chunk boundary), so that states cross chunks on both sides of the join.
#[test]
fn sharing_the_prompt_gives_the_gradients_of_whole_sequences() {
    let device = Device::Cpu;
    let mut model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let shape = LoraShape {
        rank: 2,
        alpha: 4.0,
        rslora: false,
    };
    let lora = Arc::new(TrainableLora::init(&model, &ALL_LINEAR, shape, 5, &device).unwrap());
    for (name, var) in lora.named_vars() {
        if name.ends_with("lora_B.weight") {
            let dims = var.dims().to_vec();
            var.set(&Tensor::randn(0f32, 0.05, dims, &device).unwrap())
                .unwrap();
        }
    }
    model.set_policy_adapter(Some(&lora));
    let prompt: Vec<u32> = (0..150u32).map(|k| (k * 53 + 7) % 256).collect();
    let mut sampler = Sampler::new(SamplingParams {
        temperature: 1.0,
        top_p: 1.0,
        min_p: 0.1,
        seed: 7,
    });
    let mut rollouts =
        sample_group(&model, &prompt, 3, 80, &[], &mut sampler, &device, |_| {}).unwrap();
    // Completions of 80, 20 and 70 tokens.
    for (rollout, keep) in rollouts.iter_mut().zip([80, 20, 70]) {
        rollout.tokens.truncate(keep);
        rollout.log_probs.truncate(keep);
    }
    let vars: Vec<_> = lora.named_vars().into_iter().map(|(_, v)| v).collect();
    let shared = UpdateSettings {
        clip: ClipRange::default(),
        mask_truncated: false,
        beta: 0.0,
        temperature: 1.0,
        head_chunk: 16,
        backward: Backward::Recompute,
        share_prompt: true,
    };
    let whole = UpdateSettings {
        share_prompt: false,
        ..shared
    };
    let advantages = [0.8, -1.1, 0.3];
    let run = |settings: &UpdateSettings| {
        policy_update(
            &model,
            &lora,
            &vars,
            &prompt,
            &rollouts,
            &advantages,
            settings,
        )
        .unwrap()
    };
    let (a, b) = (run(&shared), run(&whole));
    assert!(a.max_drift < 1e-4, "shared: drift {}", a.max_drift);
    assert!(b.max_drift < 1e-4, "whole: drift {}", b.max_drift);
    assert_eq!(a.tokens, 170);
    let mut largest = 0f32;
    for (name, (ga, gb)) in lora
        .named_vars()
        .iter()
        .map(|(n, _)| n)
        .zip(a.grads.iter().zip(&b.grads))
    {
        let size = gb
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        largest = largest.max(size);
        let error = max_relative(ga, gb);
        assert!(
            error < 1e-3,
            "{name}: shared-prompt gradient off by {error}"
        );
    }
    // The gradients are not all zero (which would make the comparison vacuous).
    assert!(largest > 1e-6, "no gradient reached the adapter");
}
