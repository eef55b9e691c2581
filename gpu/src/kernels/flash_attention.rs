//! Launches `flash_attention.cu`: causal attention over a whole sequence without any `[T × T]`
//! matrix, forward ([`flash_forward`]: the output and each query's log-sum-exp) and backward
//! ([`flash_backward`]: two kernels, one for `dQ`, one for `dK` and `dV`), for bf16 inputs with
//! head size 256 (Qwen3.5's full-attention layers); the forward also for head size 128
//! (Qwen3-Embedding, `flash_attention_128.cu`). The blocked candle operations of
//! `train::attention` remain the reference and the path for other sizes and dtypes.

use super::launch::{allow_shared_memory, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{DType, Result, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/flash_attention.ptx"));
const MODULE: &str = "lamar_flash_attention";
/// The forward kernel built for head size 128 (`flash_attention_128.cu`).
const PTX_128: &str = include_str!(concat!(env!("OUT_DIR"), "/flash_attention_128.ptx"));
const MODULE_128: &str = "lamar_flash_attention_128";
/// Head size of the backward kernels, rows per tile and the padded row of such a tile in
/// shared memory (the kernel's).
const HEAD: usize = 256;
const TILE: usize = 64;
const TILE_BYTES: usize = tile_bytes(HEAD);

/// Bytes of one tile of rows of `head` values in shared memory.
const fn tile_bytes(head: usize) -> usize {
    TILE * (head + 8) * 2
}

/// The sizes `(B, H, KVH, T)` when the kernels take these inputs: bf16 on CUDA, head size
/// `head`, `H` a multiple of `KVH`, keys and values of one shape; `None` otherwise.
fn sizes(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    head: usize,
) -> Result<Option<(usize, usize, usize, usize)>> {
    let (b, h, t, hd) = q.dims4()?;
    let (kb, kvh, kt, khd) = k.dims4()?;
    let fits = q.dtype() == DType::BF16
        && k.dtype() == DType::BF16
        && v.dtype() == DType::BF16
        && q.device().is_cuda()
        && hd == head
        && khd == head
        && kb == b
        && kt == t
        && kvh > 0
        && h.is_multiple_of(kvh)
        && v.dims() == k.dims()
        && t > 0;
    Ok(fits.then_some((b, h, kvh, t)))
}

/// The output `(B, H, T, hd)` (bf16) and each query's log-sum-exp of scaled scores
/// `(B, H, T)` (f32, natural log) of causal attention of `q` `(B, H, T, hd)` over `k`, `v`
/// `(B, KVH, T, hd)`, scores scaled by `scale`, for head sizes `hd` 256 (Qwen3.5) and 128
/// (Qwen3-Embedding). `None` when the sizes or dtypes are not the kernel's, or the device has
/// too little shared memory.
pub fn flash_forward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
) -> Result<Option<(Tensor, Tensor)>> {
    let head = q.dim(3)?;
    let (module, ptx) = match head {
        256 => (MODULE, PTX),
        128 => (MODULE_128, PTX_128),
        _ => return Ok(None),
    };
    let Some((b, h, kvh, t)) = sizes(q, k, v, head)? else {
        return Ok(None);
    };
    let device = cuda_device(q)?;
    let func = function(&device, "flash_forward", DType::BF16, module, ptx)?;
    let shared = 3 * tile_bytes(head);
    if !allow_shared_memory(&device, &func, shared)? {
        return Ok(None);
    }
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let bf16 = DType::BF16;
    let (qp, kp, vp) = (
        contiguous_address(&q, bf16, "queries")?,
        contiguous_address(&k, bf16, "keys")?,
        contiguous_address(&v, bf16, "values")?,
    );
    // SAFETY: the kernel writes every row below T of both.
    let out = unsafe { Tensor::empty((b, h, t, head), bf16, q.device())? };
    let lse = unsafe { Tensor::empty((b, h, t), DType::F32, q.device())? };
    let op = contiguous_address(&out, bf16, "the output")?;
    let lp = contiguous_address(&lse, DType::F32, "the log-sum-exp")?;
    let (t_i, h_i, kvh_i, scale_f) = (t as i32, h as i32, kvh as i32, scale as f32);
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&func);
    launch.arg(&qp).arg(&kp).arg(&vp).arg(&op).arg(&lp);
    launch.arg(&t_i).arg(&h_i).arg(&kvh_i).arg(&scale_f);
    let config = LaunchConfig {
        grid_dim: (t.div_ceil(TILE) as u32, h as u32, b as u32),
        block_dim: (128, 1, 1),
        shared_mem_bytes: shared as u32,
    };
    // SAFETY: sizes, dtypes and contiguity checked above; the kernel reads rows below T only.
    unsafe { launch.launch(config) }.w()?;
    Ok(Some((out, lse)))
}

/// The gradients of `q`, `k` and `v` (bf16, their shapes) of [`flash_forward`]'s attention for
/// the output's gradient `d_out` `(B, H, T, 256)`, given the forward pass's output `out` and
/// log-sum-exp `lse`. `None` as for [`flash_forward`].
pub fn flash_backward(
    [q, k, v]: [&Tensor; 3],
    out: &Tensor,
    lse: &Tensor,
    d_out: &Tensor,
    scale: f64,
) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    let Some((b, h, kvh, t)) = sizes(q, k, v, HEAD)? else {
        return Ok(None);
    };
    let device = cuda_device(q)?;
    let dq_func = function(&device, "flash_backward_dq", DType::BF16, MODULE, PTX)?;
    let dkdv_func = function(&device, "flash_backward_dkdv", DType::BF16, MODULE, PTX)?;
    let (dq_shared, dkdv_shared) = (4 * TILE_BYTES, 4 * TILE_BYTES + 2 * TILE * 4);
    if !allow_shared_memory(&device, &dq_func, dq_shared)?
        || !allow_shared_memory(&device, &dkdv_func, dkdv_shared)?
    {
        return Ok(None);
    }
    let bf16 = DType::BF16;
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let d_out = d_out.to_dtype(bf16)?.contiguous()?;
    // rowsum(dO ∘ O) in f32, (B, H, T).
    let delta = (d_out.to_dtype(DType::F32)? * out.to_dtype(DType::F32)?)?
        .sum(candle_core::D::Minus1)?
        .contiguous()?;
    let lse = lse.contiguous()?;
    let gpu = q.device();
    // SAFETY: the kernels write every row below T.
    let (dq, dk, dv) = unsafe {
        (
            Tensor::empty(q.shape(), bf16, gpu)?,
            Tensor::empty(k.shape(), bf16, gpu)?,
            Tensor::empty(v.shape(), bf16, gpu)?,
        )
    };
    let ptr = |x: &Tensor, what: &str| contiguous_address(x, x.dtype(), what);
    let (qp, kp, vp, dop) = (
        ptr(&q, "queries")?,
        ptr(&k, "keys")?,
        ptr(&v, "values")?,
        ptr(&d_out, "the output's gradient")?,
    );
    let (lp, dlp) = (
        contiguous_address(&lse, DType::F32, "the log-sum-exp")?,
        contiguous_address(&delta, DType::F32, "delta")?,
    );
    let (dqp, dkp, dvp) = (ptr(&dq, "dQ")?, ptr(&dk, "dK")?, ptr(&dv, "dV")?);
    let (t_i, h_i, kvh_i, scale_f) = (t as i32, h as i32, kvh as i32, scale as f32);
    let tiles = t.div_ceil(TILE) as u32;
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&dq_func);
    launch
        .arg(&qp)
        .arg(&kp)
        .arg(&vp)
        .arg(&dop)
        .arg(&lp)
        .arg(&dlp);
    launch
        .arg(&dqp)
        .arg(&t_i)
        .arg(&h_i)
        .arg(&kvh_i)
        .arg(&scale_f);
    let config = LaunchConfig {
        grid_dim: (tiles, h as u32, b as u32),
        block_dim: (128, 1, 1),
        shared_mem_bytes: dq_shared as u32,
    };
    // SAFETY: as in `flash_forward`.
    unsafe { launch.launch(config) }.w()?;
    let mut launch = stream.launch_builder(&dkdv_func);
    launch
        .arg(&qp)
        .arg(&kp)
        .arg(&vp)
        .arg(&dop)
        .arg(&lp)
        .arg(&dlp);
    launch
        .arg(&dkp)
        .arg(&dvp)
        .arg(&t_i)
        .arg(&h_i)
        .arg(&kvh_i)
        .arg(&scale_f);
    let config = LaunchConfig {
        grid_dim: (tiles, kvh as u32, b as u32),
        block_dim: (256, 1, 1),
        shared_mem_bytes: dkdv_shared as u32,
    };
    // SAFETY: as in `flash_forward`.
    unsafe { launch.launch(config) }.w()?;
    Ok(Some((dq, dk, dv)))
}
