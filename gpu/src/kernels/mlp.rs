//! Launches `mlp.cu`: the MLP's `silu(gate) · up` in one kernel instead of two candle
//! operations.

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
