//! Launches `mlp.cu`: the MLP's `silu(gate) · up` in one kernel instead of two candle
//! operations, and its backward (both inputs' gradients in one pass, for `train::swiglu`).

use super::launch::{address, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{D, Result, Tensor, bail};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/mlp.ptx"));
const MODULE: &str = "lamar_mlp";

/// `silu(gate) · up` for `gate` and `up` of one shape whose rows (all axes but the last) are
/// evenly spaced with a contiguous last axis (e.g. the two halves of one stacked projection).
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let dtype = gate.dtype();
    let device = cuda_device(gate)?;
    let stream = device.cuda_stream();
    if gate.dims() != up.dims() {
        bail!(
            "lamar kernel (mlp): gate {:?} and up {:?}",
            gate.dims(),
            up.dims()
        );
    }
    let cols = gate.dim(D::Minus1)?;
    let rows = gate.elem_count() / cols.max(1);
    let (gate_ptr, gate_stride) = address(gate, dtype, "gate")?;
    let (up_ptr, up_stride) = address(up, dtype, "up")?;
    // SAFETY: every element is written by the kernel.
    let out = unsafe { Tensor::empty(gate.shape(), dtype, gate.device())? };
    let out_ptr = contiguous_address(&out, dtype, "out")?;
    let (rows_i, cols_i) = (rows as i64, cols as i32);
    let func = function(&device, "silu_mul", dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&gate_ptr)
        .arg(&gate_stride)
        .arg(&up_ptr)
        .arg(&up_stride);
    launch.arg(&out_ptr).arg(&rows_i).arg(&cols_i);
    // SAFETY: the pointers and sizes were checked above.
    unsafe { launch.launch(LaunchConfig::for_num_elems((rows * cols) as u32)) }.w()?;
    Ok(out)
}

/// The gradients of [`silu_mul`]'s inputs for the output's gradient `d` (any layout; made
/// contiguous in `gate`'s dtype): `(d_gate, d_up)`, contiguous, of `gate`'s shape.
pub fn silu_mul_backward(gate: &Tensor, up: &Tensor, d: &Tensor) -> Result<(Tensor, Tensor)> {
    let dtype = gate.dtype();
    let device = cuda_device(gate)?;
    let stream = device.cuda_stream();
    if gate.dims() != up.dims() || gate.dims() != d.dims() {
        bail!(
            "lamar kernel (mlp backward): gate {:?}, up {:?}, gradient {:?}",
            gate.dims(),
            up.dims(),
            d.dims()
        );
    }
    let d = d.to_dtype(dtype)?.contiguous()?;
    let cols = gate.dim(D::Minus1)?;
    let rows = gate.elem_count() / cols.max(1);
    let (gate_ptr, gate_stride) = address(gate, dtype, "gate")?;
    let (up_ptr, up_stride) = address(up, dtype, "up")?;
    let d_ptr = contiguous_address(&d, dtype, "gradient")?;
    // SAFETY: every element of both is written by the kernel.
    let d_gate = unsafe { Tensor::empty(gate.shape(), dtype, gate.device())? };
    let d_up = unsafe { Tensor::empty(gate.shape(), dtype, gate.device())? };
    let d_gate_ptr = contiguous_address(&d_gate, dtype, "d_gate")?;
    let d_up_ptr = contiguous_address(&d_up, dtype, "d_up")?;
    let (rows_i, cols_i) = (rows as i64, cols as i32);
    let func = function(&device, "silu_mul_backward", dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&gate_ptr)
        .arg(&gate_stride)
        .arg(&up_ptr)
        .arg(&up_stride)
        .arg(&d_ptr);
    launch
        .arg(&d_gate_ptr)
        .arg(&d_up_ptr)
        .arg(&rows_i)
        .arg(&cols_i);
    // SAFETY: the pointers and sizes were checked above.
    unsafe { launch.launch(LaunchConfig::for_num_elems((rows * cols) as u32)) }.w()?;
    Ok((d_gate, d_up))
}
