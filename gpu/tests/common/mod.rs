//! Helpers shared by the model's integration tests.
#![allow(dead_code)] // each test file uses a different subset

use candle_core::Tensor;
use std::path::PathBuf;

/// The tiny Qwen3.5 golden snapshot (`tests/golden/qwen35_tiny`, made by transformers).
pub fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/qwen35_tiny")
}

/// The largest absolute difference between two f32 tensors of one shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
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
