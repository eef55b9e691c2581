//! Launches `norm.cu`: the residual stream's addition and the zero-centred RMSNorm that follows
//! it, in one kernel instead of four candle operations (add, cast, norm, cast back); and the
//! RMS norm's backward for training ([`rms_norm_backward`]), one kernel for about fifteen.

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

/// Rows each block of [`rms_norm_backward`] takes (its share of the scale's gradient is one row
/// of the partial sums the caller adds up).
const BACKWARD_ROWS: usize = 32;

/// The gradients of `x / √(mean(x²) + eps) · scale` over the last axis with respect to `x` and
/// `scale`, for the output's gradient `grad` (all f32, `scale` of the last axis' size):
/// `dx = r·gs − x·r³·mean(gs ⊙ x)` and `d_scale = Σ_rows grad ⊙ x·r`, `r` the row's
/// `1/√(mean(x²) + eps)` and `gs = grad ⊙ scale`. `None` when a tensor is not f32 or the rows
/// are longer than the kernel's shared memory holds (12,288 values).
pub fn rms_norm_backward(
    x: &Tensor,
    grad: &Tensor,
    scale: &Tensor,
    eps: f64,
) -> Result<Option<(Tensor, Tensor)>> {
    let f32 = DType::F32;
    if [x, grad, scale].iter().any(|t| t.dtype() != f32) {
        return Ok(None);
    }
    let cols = x.dim(D::Minus1)?;
    if cols == 0 || cols > 12 * 1024 {
        return Ok(None);
    }
    if scale.dims() != [cols] || grad.dims() != x.dims() {
        bail!(
            "lamar kernel (norm backward): x {:?}, grad {:?}, scale {:?}",
            x.dims(),
            grad.dims(),
            scale.dims()
        );
    }
    let rows = x.elem_count() / cols;
    let device = cuda_device(x)?;
    let stream = device.cuda_stream();
    let (x, grad, scale) = (x.contiguous()?, grad.contiguous()?, scale.contiguous()?);
    let x_ptr = contiguous_address(&x, f32, "x")?;
    let grad_ptr = contiguous_address(&grad, f32, "the gradient")?;
    let scale_ptr = contiguous_address(&scale, f32, "scale")?;
    let blocks = rows.div_ceil(BACKWARD_ROWS).max(1);
    // SAFETY: the kernel writes every element of both.
    let dx = unsafe { Tensor::empty(x.shape(), f32, x.device())? };
    let partial = unsafe { Tensor::empty((blocks, cols), f32, x.device())? };
    let dx_ptr = contiguous_address(&dx, f32, "dx")?;
    let partial_ptr = contiguous_address(&partial, f32, "the partial sums")?;
    let func = function(&device, "rms_norm_backward", f32, MODULE, PTX)?;
    let (rows_i, cols_i, per_block, eps_f) =
        (rows as i64, cols as i32, BACKWARD_ROWS as i32, eps as f32);
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&x_ptr)
        .arg(&grad_ptr)
        .arg(&scale_ptr)
        .arg(&dx_ptr)
        .arg(&partial_ptr);
    launch.arg(&rows_i).arg(&cols_i).arg(&per_block).arg(&eps_f);
    let config = LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (cols.div_ceil(32).clamp(1, 8) as u32 * 32, 1, 1),
        shared_mem_bytes: (cols * 4) as u32,
    };
    // SAFETY: the pointers and sizes were checked above; each block stays in its rows and its
    // row of the partial sums.
    unsafe { launch.launch(config) }.w()?;
    Ok(Some((dx, partial.sum(0)?)))
}
