//! The `--device` and `--dtype` flags the bench binaries share (`src/bin/*.rs` include this
//! file with `#[path]`; the `lamar` binary has its own, richer choices).

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device};

/// `cuda` (the first GPU) or `cpu`.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cuda" => Device::new_cuda(0).context("no CUDA device (is this a --features cuda build?)"),
        "cpu" => Ok(Device::Cpu),
        other => bail!("--device {other}: expected cuda or cpu"),
    }
}

/// `bf16` or `f32`.
pub fn dtype(name: &str) -> Result<DType> {
    match name {
        "bf16" => Ok(DType::BF16),
        "f32" => Ok(DType::F32),
        other => bail!("--dtype {other}: expected bf16 or f32"),
    }
}
