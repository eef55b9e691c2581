//! Launches `deltanet.cu`: one decoding step of a Gated DeltaNet layer for a batch of rows with
//! one new token each, updating the layer's convolution history and recurrent state in place.

use super::launch::{address, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{DType, Result, Tensor, bail};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/deltanet.ptx"));
const MODULE: &str = "lamar_deltanet";

/// The inputs of one decoding step of a DeltaNet layer. The four projections are `(B, 1, n)`
/// (views into one stacked projection are fine: only their last axis must be contiguous); the
/// convolution history `(B, kernel − 1, channels)` and the state `(B, nv, dk, dv)` (f32) must be
/// contiguous and owned by the caller's cache alone, since they are overwritten.
pub struct DeltaNetDecode<'a> {
    /// `in_proj_qkv` output: queries, keys, values (`channels = 2·nk·dk + nv·dv`).
    pub qkv: &'a Tensor,
    /// `in_proj_z` output, the output gate `(nv·dv)`.
    pub z: &'a Tensor,
    /// `in_proj_b` output, before the sigmoid `(nv)`.
    pub beta: &'a Tensor,
    /// `in_proj_a` output, before `dt_bias` and the softplus `(nv)`.
    pub a: &'a Tensor,
    /// Depthwise convolution weights `(channels, kernel)`, the model's dtype.
    pub conv_weight: &'a Tensor,
    /// The last `kernel − 1` convolution inputs, updated in place.
    pub conv_history: &'a Tensor,
    /// The recurrent state, f32, updated in place.
    pub state: &'a Tensor,
    /// `−exp(A_log)`, `dt_bias` and the gated norm's weight, f32.
    pub neg_a: &'a Tensor,
    /// See `neg_a`.
    pub dt_bias: &'a Tensor,
    /// See `neg_a`.
    pub norm_weight: &'a Tensor,
    /// Query/key heads, value heads, and their sizes.
    pub key_heads: usize,
    /// See `key_heads`.
    pub value_heads: usize,
    /// See `key_heads`.
    pub key_dim: usize,
    /// See `key_heads`.
    pub value_dim: usize,
    /// The gated norm's epsilon.
    pub eps: f64,
}

/// Runs the step: returns the gated, normed output `(B, 1, nv·dv)` in the model's dtype (the
/// input of `out_proj`), and leaves the updated history and state in their tensors.
pub fn deltanet_decode(step: &DeltaNetDecode) -> Result<Tensor> {
    let dtype = step.qkv.dtype();
    let device = cuda_device(step.qkv)?;
    let stream = device.cuda_stream();
    let (nk, nv, dk, dv) = (
        step.key_heads,
        step.value_heads,
        step.key_dim,
        step.value_dim,
    );
    let (rows, kernel_minus_one, channels) = step.conv_history.dims3()?;
    let kernel = kernel_minus_one + 1;
    if kernel < 2 || channels != 2 * nk * dk + nv * dv || nk == 0 || nv % nk != 0 {
        bail!("lamar kernel (DeltaNet): inconsistent sizes (channels {channels}, heads {nk}/{nv})");
    }
    if step.state.dims() != [rows, nv, dk, dv] {
        bail!(
            "lamar kernel (DeltaNet): state {:?} for {rows} rows",
            step.state.dims()
        );
    }
    let (qkv, qkv_stride) = address(step.qkv, dtype, "qkv")?;
    let (z, z_stride) = address(step.z, dtype, "z")?;
    let (beta, beta_stride) = address(step.beta, dtype, "beta")?;
    let (a, a_stride) = address(step.a, dtype, "a")?;
    let history = contiguous_address(step.conv_history, dtype, "convolution history")?;
    let weight = contiguous_address(step.conv_weight, dtype, "convolution weight")?;
    let state = contiguous_address(step.state, DType::F32, "state")?;
    let neg_a = contiguous_address(step.neg_a, DType::F32, "neg_a")?;
    let dt_bias = contiguous_address(step.dt_bias, DType::F32, "dt_bias")?;
    let norm_weight = contiguous_address(step.norm_weight, DType::F32, "norm weight")?;

    let gpu = step.qkv.device();
    // SAFETY: every element of these is written by the kernels below before it is read.
    let mixed = unsafe { Tensor::empty((rows, channels), DType::F32, gpu)? };
    let o = unsafe { Tensor::empty((rows, nv, dv), DType::F32, gpu)? };
    let out = unsafe { Tensor::empty((rows, 1, nv * dv), dtype, gpu)? };
    let mixed_ptr = contiguous_address(&mixed, DType::F32, "mixed")?;
    let o_ptr = contiguous_address(&o, DType::F32, "o")?;
    let out_ptr = contiguous_address(&out, dtype, "out")?;
    let int = |n: usize| n as i32;

    let conv = function(&device, "deltanet_conv", dtype, MODULE, PTX)?;
    let threads = (rows * channels) as u32;
    let mut launch = stream.launch_builder(&conv);
    let (rows_i, channels_i, kernel_i) = (int(rows), int(channels), int(kernel));
    launch
        .arg(&qkv)
        .arg(&qkv_stride)
        .arg(&history)
        .arg(&weight)
        .arg(&mixed_ptr);
    launch.arg(&rows_i).arg(&channels_i).arg(&kernel_i);
    // SAFETY: the pointers and sizes were checked above; the kernel stays inside them.
    unsafe { launch.launch(LaunchConfig::for_num_elems(threads)) }.w()?;

    let (nk_i, nv_i, dk_i, dv_i) = (int(nk), int(nv), int(dk), int(dv));
    let q_factor = (1.0 / (dk as f64).sqrt()) as f32;
    let grid = (dv.div_ceil(32) as u32, nv as u32, rows as u32);
    // Qwen3.5's key heads (dk = 128): the state stays in registers (read once), 4 warps of 32
    // rows each. Other sizes: one warp per tile, the query and key in shared memory.
    let fixed = dk == 128;
    let (name, block_dim, shared_mem_bytes) = if fixed {
        ("deltanet_delta128", (32, 4, 1), 0)
    } else {
        ("deltanet_delta", (32, 1, 1), (2 * dk * 4) as u32)
    };
    let delta = function(&device, name, dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&delta);
    launch
        .arg(&mixed_ptr)
        .arg(&channels_i)
        .arg(&beta)
        .arg(&beta_stride);
    launch
        .arg(&a)
        .arg(&a_stride)
        .arg(&neg_a)
        .arg(&dt_bias)
        .arg(&state)
        .arg(&o_ptr);
    launch.arg(&nk_i).arg(&nv_i);
    if !fixed {
        launch.arg(&dk_i); // the fixed kernel has dk built in
    }
    launch.arg(&dv_i).arg(&q_factor);
    let config = LaunchConfig {
        grid_dim: grid,
        block_dim,
        shared_mem_bytes,
    };
    // SAFETY: as above.
    unsafe { launch.launch(config) }.w()?;

    let norm = function(&device, "deltanet_gated_norm", dtype, MODULE, PTX)?;
    let eps = step.eps as f32;
    let mut launch = stream.launch_builder(&norm);
    launch
        .arg(&o_ptr)
        .arg(&z)
        .arg(&z_stride)
        .arg(&norm_weight)
        .arg(&out_ptr);
    launch.arg(&nv_i).arg(&dv_i).arg(&eps);
    let config = LaunchConfig {
        grid_dim: (nv as u32, rows as u32, 1),
        block_dim: (dv.div_ceil(32).clamp(1, 32) as u32 * 32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: as above.
    unsafe { launch.launch(config) }.w()?;
    Ok(out)
}
