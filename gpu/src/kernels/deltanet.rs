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
    // Blocks of 128 threads: at batch 1 the 8k channels spread over 64 multiprocessors (blocks
    // of 1024 put them on 8, each waiting on its own loads).
    let config = LaunchConfig {
        grid_dim: (threads.div_ceil(128), 1, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the pointers and sizes were checked above; the kernel stays inside them.
    unsafe { launch.launch(config) }.w()?;

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

    launch_gated_norm(
        &device,
        dtype,
        [o_ptr, z, norm_weight, out_ptr],
        z_stride,
        rows,
        nv,
        dv,
        step.eps,
    )?;
    Ok(out)
}

/// `deltanet_gated_norm`: `out = round(round(rms(o) · weight) · silu(z))` per value head, for
/// `rows` rows of `nv` heads of `dv` values; pointers `[o, z, weight, out]`.
#[allow(clippy::too_many_arguments)]
fn launch_gated_norm(
    device: &candle_core::CudaDevice,
    dtype: DType,
    [o, z, weight, out]: [u64; 4],
    z_stride: i64,
    rows: usize,
    nv: usize,
    dv: usize,
    eps: f64,
) -> Result<()> {
    let norm = function(device, "deltanet_gated_norm", dtype, MODULE, PTX)?;
    let eps = eps as f32;
    let (nv_i, dv_i) = (nv as i32, dv as i32);
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&norm);
    launch.arg(&o).arg(&z).arg(&z_stride).arg(&weight).arg(&out);
    launch.arg(&nv_i).arg(&dv_i).arg(&eps);
    let config = LaunchConfig {
        grid_dim: (nv as u32, rows as u32, 1),
        block_dim: (dv.div_ceil(32).clamp(1, 32) as u32 * 32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the callers check the pointers' sizes; one block per (row, head) stays in it.
    unsafe { launch.launch(config) }.w()?;
    Ok(())
}

/// The gated RMSNorm of a DeltaNet layer's output for any number of tokens: `o` `(…, nv, dv)`
/// f32 contiguous, `z` `(…, nv·dv)` in the model's dtype (rows evenly spaced), `weight` `(dv)`
/// f32: `(…, nv·dv)` in the model's dtype. `None` for more rows than one launch takes.
pub fn gated_norm(o: &Tensor, z: &Tensor, weight: &Tensor, eps: f64) -> Result<Option<Tensor>> {
    let dtype = z.dtype();
    let dims = o.dims();
    let [.., nv, dv] = *dims else {
        bail!("lamar kernel (gated norm): output {dims:?}");
    };
    let rows = o.elem_count() / (nv * dv).max(1);
    if rows > 65_535 || z.elem_count() != rows * nv * dv || weight.dims() != [dv] {
        return Ok(None);
    }
    let device = cuda_device(z)?;
    let o_ptr = contiguous_address(o, DType::F32, "o")?;
    let (z_ptr, z_stride) = address(z, dtype, "z")?;
    let weight_ptr = contiguous_address(weight, DType::F32, "norm weight")?;
    // SAFETY: every element is written by the kernel.
    let out = unsafe { Tensor::empty(z.shape(), dtype, z.device())? };
    let out_ptr = contiguous_address(&out, dtype, "out")?;
    launch_gated_norm(
        &device,
        dtype,
        [o_ptr, z_ptr, weight_ptr, out_ptr],
        z_stride,
        rows,
        nv,
        dv,
        eps,
    )?;
    Ok(Some(out))
}

/// The gradients of [`gated_norm`]'s `o` (f32, `o`'s shape) and `z` (`z`'s shape and dtype)
/// for the gradient `grad` of its output (`z`'s shape and dtype); the norm weight is frozen.
/// `None` where the forward kernel would not run, or for heads wider than a block (1,024).
pub fn gated_norm_backward(
    o: &Tensor,
    z: &Tensor,
    weight: &Tensor,
    grad: &Tensor,
    eps: f64,
) -> Result<Option<(Tensor, Tensor)>> {
    let dtype = z.dtype();
    let dims = o.dims();
    let [.., nv, dv] = *dims else {
        bail!("lamar kernel (gated norm backward): output {dims:?}");
    };
    let rows = o.elem_count() / (nv * dv).max(1);
    if rows > 65_535 || dv > 1_024 || z.elem_count() != rows * nv * dv || weight.dims() != [dv] {
        return Ok(None);
    }
    if grad.dims() != z.dims() || grad.dtype() != dtype {
        bail!(
            "lamar kernel (gated norm backward): gradient {:?} {:?} for an output {:?} {dtype:?}",
            grad.dims(),
            grad.dtype(),
            z.dims()
        );
    }
    let device = cuda_device(z)?;
    let o_ptr = contiguous_address(o, DType::F32, "o")?;
    let (z_ptr, z_stride) = address(z, dtype, "z")?;
    let weight_ptr = contiguous_address(weight, DType::F32, "norm weight")?;
    let grad = grad.contiguous()?;
    let grad_ptr = contiguous_address(&grad, dtype, "gradient")?;
    // SAFETY: every element of both is written by the kernel.
    let d_o = unsafe { Tensor::empty(o.shape(), DType::F32, o.device())? };
    let d_z = unsafe { Tensor::empty(z.shape(), dtype, z.device())? };
    let d_o_ptr = contiguous_address(&d_o, DType::F32, "o's gradient")?;
    let d_z_ptr = contiguous_address(&d_z, dtype, "z's gradient")?;
    let func = function(&device, "deltanet_gated_norm_backward", dtype, MODULE, PTX)?;
    let (nv_i, dv_i, eps) = (nv as i32, dv as i32, eps as f32);
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&o_ptr)
        .arg(&z_ptr)
        .arg(&z_stride)
        .arg(&weight_ptr);
    launch.arg(&grad_ptr).arg(&d_o_ptr).arg(&d_z_ptr);
    launch.arg(&nv_i).arg(&dv_i).arg(&eps);
    let config = LaunchConfig {
        grid_dim: (nv as u32, rows as u32, 1),
        block_dim: (dv.div_ceil(32) as u32 * 32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: sizes checked above; one block per (row, head), a thread per value.
    unsafe { launch.launch(config) }.w()?;
    Ok(Some((d_o, d_z)))
}

/// A DeltaNet layer's causal convolution and SiLU for a prefill: `x` `(B, T, channels)` (rows
/// evenly spaced), after the last `kernel − 1` inputs `history` `(B, kernel − 1, channels)`,
/// with `weight` `(channels, kernel)`, all in the model's dtype: `(B, T, channels)`. The history
/// is not changed.
pub fn conv_prefill(x: &Tensor, history: &Tensor, weight: &Tensor) -> Result<Tensor> {
    launch_conv("deltanet_conv_prefill", x, history, weight, None)
}

/// The gradient of [`conv_prefill`]'s input `x` for the gradient `grad` `(B, T, channels)` of
/// its output (the pre-activation recomputed; none for the history or the weight), in the
/// model's dtype: `(B, T, channels)`.
pub fn conv_prefill_backward(
    x: &Tensor,
    history: &Tensor,
    weight: &Tensor,
    grad: &Tensor,
) -> Result<Tensor> {
    if grad.dims() != x.dims() || grad.dtype() != x.dtype() {
        bail!(
            "lamar kernel (DeltaNet convolution backward): input {:?} {:?}, gradient {:?} {:?}",
            x.dims(),
            x.dtype(),
            grad.dims(),
            grad.dtype()
        );
    }
    launch_conv(
        "deltanet_conv_prefill_backward",
        x,
        history,
        weight,
        Some(grad),
    )
}

/// Launches the prefill convolution kernel `name` (the forward pass, or with `grad` its
/// backward): one thread per channel, the grid's lines striding over (row, token) pairs.
fn launch_conv(
    name: &str,
    x: &Tensor,
    history: &Tensor,
    weight: &Tensor,
    grad: Option<&Tensor>,
) -> Result<Tensor> {
    let dtype = x.dtype();
    let (rows, tokens, channels) = x.dims3()?;
    let (channels_w, kernel) = weight.dims2()?;
    if channels_w != channels || history.dims() != [rows, kernel - 1, channels] {
        bail!(
            "lamar kernel (DeltaNet convolution): input {:?}, history {:?}, weight {:?}",
            x.dims(),
            history.dims(),
            weight.dims()
        );
    }
    let device = cuda_device(x)?;
    let (x_ptr, x_stride) = address(x, dtype, "input")?;
    let history = history.contiguous()?;
    let history_ptr = contiguous_address(&history, dtype, "convolution history")?;
    let weight_ptr = contiguous_address(weight, dtype, "convolution weight")?;
    let grad = grad.map(Tensor::contiguous).transpose()?;
    let grad_ptr = grad
        .as_ref()
        .map(|g| contiguous_address(g, dtype, "gradient"))
        .transpose()?;
    // SAFETY: every element is written by the kernel.
    let out = unsafe { Tensor::empty((rows, tokens, channels), dtype, x.device())? };
    let out_ptr = contiguous_address(&out, dtype, "out")?;
    let int = |n: usize| n as i32;
    let (rows_i, tokens_i, channels_i, kernel_i) =
        (int(rows), int(tokens), int(channels), int(kernel));
    let func = function(&device, name, dtype, MODULE, PTX)?;
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&x_ptr)
        .arg(&x_stride)
        .arg(&history_ptr)
        .arg(&weight_ptr);
    if let Some(grad_ptr) = &grad_ptr {
        launch.arg(grad_ptr);
    }
    launch.arg(&out_ptr);
    launch
        .arg(&rows_i)
        .arg(&tokens_i)
        .arg(&channels_i)
        .arg(&kernel_i);
    let config = LaunchConfig {
        grid_dim: (
            channels.div_ceil(256) as u32,
            (rows * tokens).min(65_535) as u32,
            1,
        ),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: sizes checked above; one thread per channel, the grid's lines stride over
    // (row, token) pairs.
    unsafe { launch.launch(config) }.w()?;
    Ok(out)
}
