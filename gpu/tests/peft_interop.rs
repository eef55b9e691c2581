//! An adapter lamar trains is one Python's PEFT loads and applies the same way.
//!
//! `tests/golden/qwen35_tiny_peft_check/adapter` was written by lamar's trainer (three steps on
//! the tiny golden model; `write_the_golden_adapter` below, run with `--ignored` to make it
//! again); `gpu/tools/check_peft_adapter.py` loaded it with `PeftModel.from_pretrained` on the
//! GPU machine and wrote the logits PEFT computes with it (`peft_logits.safetensors`). Here lamar
//! loads the same files and must compute the same logits.

mod common;

use common::{golden, max_abs_diff};

use candle_core::{DType, Device};
use lamar_model::lora::LoraAdapter;
use lamar_model::qwen35;
use lamar_model::train::data::Example;
use lamar_model::train::lora::{ALL_LINEAR, LoraShape, TrainableLora};
use lamar_model::train::trainer::{TrainConfig, train};
use std::path::PathBuf;
use std::sync::Arc;

fn check_dir() -> PathBuf {
    golden().join("../qwen35_tiny_peft_check")
}

#[test]
fn peft_applies_lamars_adapter_as_lamar_does() {
    let dir = check_dir();
    let expected =
        candle_core::safetensors::load(dir.join("peft_logits.safetensors"), &Device::Cpu).unwrap();
    let ids = expected["input_ids"].to_dtype(DType::U32).unwrap();
    let adapter = dir.join("adapter");
    let loaded = LoraAdapter::load(&adapter, false, &Device::Cpu).unwrap();
    assert_eq!(loaded.modules(), 31, "every linear layer");
    let adapted =
        qwen35::load_with_adapter(&golden(), Some(&loaded), DType::F32, &Device::Cpu).unwrap();
    let logits = adapted.forward_sequence(&ids, None).unwrap();
    let diff = max_abs_diff(&logits, &expected["logits"]);
    assert!(diff < 1e-4, "lamar and PEFT differ by {diff}");
    // The adapter matters: without it the logits are PEFT's base logits, far from these.
    let base = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let plain = base.forward_sequence(&ids, None).unwrap();
    assert!(max_abs_diff(&plain, &expected["base_logits"]) < 1e-4);
    assert!(
        max_abs_diff(&plain, &logits) > 1e-2,
        "the adapter changes nothing"
    );
    // The training path reads the files back to the same adapter.
    let lora = Arc::new(TrainableLora::from_peft(&adapter, &base, &Device::Cpu).unwrap());
    let again = base
        .hidden_states_with(&ids, None, Some(lora))
        .unwrap()
        .broadcast_matmul(&base.lm_head_weight().t().unwrap())
        .unwrap();
    assert!(max_abs_diff(&again, &expected["logits"]) < 1e-4);
}

/// Writes `tests/golden/qwen35_tiny_peft_check/adapter`: three optimiser steps of DFT on
/// seeded random sequences from a fresh adapter (r 4, alpha 8, rsLoRA).
#[test]
#[ignore = "makes the golden adapter; run by hand, then run gpu/tools/check_peft_adapter.py"]
fn write_the_golden_adapter() {
    use rand::{RngExt, SeedableRng};
    let model = qwen35::load(&golden(), DType::F32, &Device::Cpu).unwrap();
    let shape = LoraShape {
        rank: 4,
        alpha: 8.0,
        rslora: true,
    };
    let lora = Arc::new(TrainableLora::init(&model, &ALL_LINEAR, shape, 21, &Device::Cpu).unwrap());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let examples: Vec<Example> = (0..3)
        .map(|_| Example {
            ids: (0..48).map(|_| rng.random_range(3..256)).collect(),
            response_start: 20,
            truncated: false,
        })
        .collect();
    let config = TrainConfig {
        learning_rate: 5e-2,
        warmup_ratio: 0.0,
        accumulation: 1,
        epochs: 1,
        ..TrainConfig::default()
    };
    train(&model, &lora, &examples, &config, None, |_| {}).unwrap();
    lora.save_peft(&check_dir().join("adapter"), "tests/golden/qwen35_tiny")
        .unwrap();
}
