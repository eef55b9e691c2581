//! Parity with Hugging Face transformers 5.17 on a tiny random Qwen3.5 text model
//! (`tests/golden/qwen35_tiny`, made by `gpu/tools/make_tiny_qwen35.py`: 3 DeltaNet layers and 1
//! gated-attention layer, every weight perturbed): logits of a 100-token prompt in one call and
//! token by token, and a greedy continuation.

use candle_core::{DType, Device, Tensor};
use lamar_gpu::qwen35;
use std::path::PathBuf;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/qwen35_tiny")
}

fn expected() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(golden().join("expected.safetensors"), &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn logits_match_transformers_in_one_call_and_token_by_token() {
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let want = expected();
    let ids = want["input_ids"].to_dtype(DType::U32).unwrap();
    let logits = model.forward(&ids, &mut model.new_cache()).unwrap();
    let diff = max_abs_diff(&logits, &want["logits"]);
    eprintln!("prefill: max abs logit difference {diff:e}");
    assert!(diff < 1e-4, "prefill logits differ by {diff}");
    // The same tokens one at a time through the caches.
    let mut cache = model.new_cache();
    let steps: Vec<Tensor> = (0..ids.dim(1).unwrap())
        .map(|t| {
            model
                .forward(&ids.narrow(1, t, 1).unwrap(), &mut cache)
                .unwrap()
        })
        .collect();
    let stepwise = Tensor::cat(&steps, 1).unwrap();
    let diff = max_abs_diff(&stepwise, &want["step_logits"]);
    assert!(diff < 1e-4, "token-by-token logits differ by {diff}");
    assert_eq!(cache.position, 100);
}

#[test]
fn greedy_decoding_matches_transformers_token_for_token() {
    let device = Device::Cpu;
    let model = qwen35::load(&golden(), DType::F32, &device).unwrap();
    let want = expected();
    let greedy: Vec<u32> = want["greedy"]
        .to_dtype(DType::U32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let (prompt, continuation) = greedy.split_at(10);
    let got = model
        .greedy(prompt, continuation.len(), None, &device)
        .unwrap();
    assert_eq!(got, continuation);
}

#[test]
fn bad_folders_are_reported() {
    let err = qwen35::load(&PathBuf::from("/nonexistent"), DType::F32, &Device::Cpu)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("/nonexistent/config.json"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{\"vocab_size\": 3}").unwrap();
    let err = qwen35::load(dir.path(), DType::F32, &Device::Cpu)
        .err()
        .unwrap();
    assert!(err.to_string().contains("config.json"), "{err}");
}
