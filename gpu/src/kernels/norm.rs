//! Launches `norm.cu`: the residual stream's addition and the zero-centred RMSNorm that follows
//! it, in one kernel instead of four candle operations (add, cast, norm, cast back).

use super::launch::{contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{D, DType, Result, Tensor, bail};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/norm.ptx"));
const MODULE: &str = "lamar_norm";

/// `residual ← residual + delta` (in place, rounded to the residual's dtype; skipped without a
/// `delta`), then returns `residual / √(mean(residual²) + eps) · scale` over the last axis,
/// computed in f32 and rounded. `residual` must be contiguous and owned by the caller alone;
/// `delta` has its shape; `scale` is f32 (`1 + weight` for Qwen3.5's zero-centred norms).
pub fn add_rms_norm(
    residual: &Tensor,
    delta: Option<&Tensor>,
    scale: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let dtype = residual.dtype();
    let device = cuda_device(residual)?;
    let stream = device.cuda_stream();
    let cols = residual.dim(D::Minus1)?;
    let rows = residual.elem_count() / cols.max(1);
    if scale.dims() != [cols] {
        bail!(
            "lamar kernel (norm): scale {:?} for {cols} columns",
            scale.dims()
        );
    }
    let residual_ptr = contiguous_address(residual, dtype, "residual")?;
    // Kept alive until the launch: a tensor dropped earlier could hand its memory to `out`.
    let delta = delta.map(Tensor::contiguous).transpose()?;
    let delta_ptr = match &delta {
        Some(d) if d.dims() == residual.dims() => contiguous_address(d, dtype, "delta")?,
        Some(d) => bail!(
            "lamar kernel (norm): delta {:?} for {:?}",
            d.dims(),
            residual.dims()
        ),
        None => 0,
    };
    let scale_ptr = contiguous_address(scale, DType::F32, "scale")?;
    // SAFETY: every element is written by the kernel.
    let out = unsafe { Tensor::empty(residual.shape(), dtype, residual.device())? };
    let out_ptr = contiguous_address(&out, dtype, "out")?;
    let (cols_i, eps_f) = (cols as i32, eps as f32);
    // Rows of up to 8192 values in 16-byte packs (every row of Qwen3.5's residual stream): a
    // thread per eight values, held in registers; otherwise a loop over the row.
    let packed = cols.is_multiple_of(8)
        && cols <= 8 * 1024
        && [residual_ptr, delta_ptr, scale_ptr, out_ptr]
            .iter()
            .all(|p| p.is_multiple_of(16));
    let (name, threads) = if packed {
        ("add_rms_norm_packed", (cols / 8).div_ceil(32) * 32)
    } else {
        ("add_rms_norm", cols.div_ceil(32).clamp(1, 32) * 32)
    };
    let func = function(&device, name, dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&residual_ptr)
        .arg(&delta_ptr)
        .arg(&scale_ptr)
        .arg(&out_ptr);
    launch.arg(&cols_i).arg(&eps_f);
    let config = LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the pointers and sizes were checked above; one block per row stays in its row.
    unsafe { launch.launch(config) }.w()?;
    Ok(out)
}
