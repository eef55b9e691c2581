//! The encoder baseline against PyTorch and candle-transformers:
//! * golden files by transformers (`gpu/tools/make_tiny_encoder_golden.py`, tiny random BERT
//!   and RoBERTa token classifiers): lamar's trainable classifier gives the same logits, the
//!   same loss and the same gradient for every tensor; candle-transformers' models (lamar's
//!   inference path) give the same logits;
//! * both of lamar's paths agree on a classifier made here, padding included.

mod common;

use common::max_abs_diff;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use lamar_model::encoder::backbone::InferenceClassifier;
use lamar_model::encoder::config::EncoderConfig;
use lamar_model::encoder::model::{TokenClassifier, token_cross_entropy};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden/encoder_tiny")
        .join(name)
}

/// The largest magnitude in `t`.
fn largest(t: &Tensor) -> f32 {
    max_abs_diff(t, &t.zeros_like().unwrap())
}

/// The largest difference relative to the largest magnitude of `want`.
fn relative(got: &Tensor, want: &Tensor) -> f32 {
    max_abs_diff(got, want) / largest(want).max(1e-12)
}

/// A trainable classifier over the tensors of `dir`, and its variables by name.
fn trainable(dir: &Path) -> (TokenClassifier, HashMap<String, Var>) {
    let config = EncoderConfig::from_dir(dir).unwrap();
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().unwrap();
        for (name, t) in tensors {
            data.insert(name, Var::from_tensor(&t).unwrap());
        }
    }
    let before = varmap.all_vars().len();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = TokenClassifier::new(&config, 19, vb).unwrap();
    assert_eq!(
        varmap.all_vars().len(),
        before,
        "every tensor of the model comes from the golden checkpoint"
    );
    let vars = varmap.data().lock().unwrap().clone();
    (model, vars)
}

fn golden_step(name: &str) {
    let dir = golden(name);
    let step = candle_core::safetensors::load(dir.join("step.safetensors"), &Device::Cpu).unwrap();
    let ids = step["input_ids"].to_dtype(DType::U32).unwrap();
    let mask = step["attention_mask"].to_dtype(DType::U32).unwrap();
    let labels: Vec<i64> = step["labels"].flatten_all().unwrap().to_vec1().unwrap();
    let (model, vars) = trainable(&dir);

    let logits = model.forward(&ids, &mask, None).unwrap();
    let logits_error = relative(&logits, &step["logits"]);
    assert!(
        logits_error < 2e-5,
        "{name}: logits differ by {logits_error}"
    );

    let loss = token_cross_entropy(&logits, &labels).unwrap().unwrap();
    let got = loss.to_scalar::<f32>().unwrap();
    let want = step["loss"].to_vec1::<f32>().unwrap()[0];
    assert!(
        ((got - want) / want).abs() < 1e-5,
        "{name}: loss {got} against PyTorch's {want}"
    );

    let grads = loss.backward().unwrap();
    let mut compared = 0;
    for (key, want) in &step {
        let Some(param) = key.strip_prefix("grad.") else {
            continue;
        };
        let var = vars
            .get(param)
            .unwrap_or_else(|| panic!("{name}: no variable {param}"));
        let got = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient for {param}"));
        if largest(want) < 1e-6 {
            // The keys' bias shifts every score of a query alike, which softmax ignores: its
            // gradient is zero but for rounding, in both.
            let got = largest(got);
            assert!(got < 1e-5, "{name}: gradient of {param} is {got}, not ~0");
        } else {
            let error = relative(got, want);
            assert!(
                error < 1e-4,
                "{name}: gradient of {param} differs by {error}"
            );
        }
        compared += 1;
    }
    // PyTorch gives every parameter a gradient, so all of lamar's are compared.
    assert_eq!(compared, vars.len(), "{name}: gradients compared");

    // candle-transformers' model, the inference path, on the same weights.
    let config = EncoderConfig::from_dir(&dir).unwrap();
    let reference = InferenceClassifier::load(&dir, &config, 19, &Device::Cpu).unwrap();
    let logits = reference.forward(&ids, &mask).unwrap();
    // Padding rows are where the two models may differ: PyTorch's SDPA and candle-transformers
    // mask them alike, so all positions are compared.
    let error = relative(&logits, &step["logits"]);
    assert!(
        error < 2e-5,
        "{name}: candle-transformers' logits differ by {error}"
    );
}

#[test]
fn bert_logits_loss_and_gradients_equal_pytorch() {
    golden_step("bert");
}

#[test]
fn roberta_logits_loss_and_gradients_equal_pytorch() {
    golden_step("roberta");
}

#[test]
fn the_trainable_and_inference_paths_agree_with_padding() {
    for family in ["bert", "roberta"] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EncoderConfig::tiny(300);
        config.model_type = family.into();
        config.pad_token_id = if family == "roberta" { 1 } else { 0 };
        config.initializer_range = 0.3;
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_string(&config).unwrap(),
        )
        .unwrap();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = TokenClassifier::new(&config, 19, vb).unwrap();
        varmap.save(dir.path().join("model.safetensors")).unwrap();
        let ids: Vec<u32> = (0..40u32).map(|k| 2 + (k * 37) % 290).collect();
        let mut ids = Tensor::from_vec(ids, (2, 20), &Device::Cpu).unwrap();
        let mut mask = vec![1u32; 40];
        mask[33..].fill(0);
        let pad = Tensor::full(config.pad_token_id, (1, 7), &Device::Cpu).unwrap();
        ids = ids.slice_assign(&[1..2, 13..20], &pad).unwrap();
        let mask = Tensor::from_vec(mask, (2, 20), &Device::Cpu).unwrap();
        let ours = model.forward(&ids, &mask, None).unwrap();
        let reference = InferenceClassifier::load(dir.path(), &config, 19, &Device::Cpu).unwrap();
        let theirs = reference.forward(&ids, &mask).unwrap();
        // Tokens only: padding positions carry no meaning.
        let error = relative(
            &ours.narrow(1, 0, 13).unwrap(),
            &theirs.narrow(1, 0, 13).unwrap(),
        );
        assert!(error < 1e-5, "{family}: the two paths differ by {error}");
        let error = relative(&ours.get(0).unwrap(), &theirs.get(0).unwrap());
        assert!(error < 1e-5, "{family}: the two paths differ by {error}");
    }
}
