//! Launches `attention.cu`: the start of a full-attention layer's decoding step (query and key
//! norms, partial RoPE, and the new key and value written into the cache buffers) in one kernel
//! instead of about thirty candle operations.

use super::launch::{address, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{DType, Result, Tensor, bail};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/attention.ptx"));
const MODULE: &str = "lamar_attention";

/// The inputs of the prologue. Projections are `(B, 1, n)` (views into one stacked projection
/// are fine); the key/value buffers `(B, kv_heads, capacity, head_dim)` are contiguous and get
/// column `column` written.
pub struct AttentionDecode<'a> {
    /// `q_proj` output: per head, the query then the output gate (`heads · 2 · head_dim`).
    pub query_gate: &'a Tensor,
    /// `k_proj` output (`kv_heads · head_dim`).
    pub key: &'a Tensor,
    /// `v_proj` output (`kv_heads · head_dim`).
    pub value: &'a Tensor,
    /// The query and key norms' scales (`1 + weight`), f32 `(head_dim)`.
    pub q_scale: &'a Tensor,
    /// See `q_scale`.
    pub k_scale: &'a Tensor,
    /// Each row's position `(B, 1)`, f32.
    pub positions: &'a Tensor,
    /// RoPE inverse frequencies, f32 (`rotary / 2` values).
    pub inv_freq: &'a Tensor,
    /// The key buffer.
    pub key_cache: &'a Tensor,
    /// The value buffer.
    pub value_cache: &'a Tensor,
    /// The column the new key and value go to.
    pub column: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Size of a head.
    pub head_dim: usize,
    /// Dimensions RoPE turns (the first ones of each head).
    pub rotary: usize,
    /// The norms' epsilon.
    pub eps: f64,
}

/// Runs the prologue: returns the normed, rotated queries `(B, heads, 1, head_dim)`.
pub fn attention_decode_prologue(a: &AttentionDecode) -> Result<Tensor> {
    let dtype = a.query_gate.dtype();
    let device = cuda_device(a.query_gate)?;
    let stream = device.cuda_stream();
    let (rows, kv_heads, capacity, hd) = a.key_cache.dims4()?;
    if kv_heads != a.kv_heads
        || hd != a.head_dim
        || a.column >= capacity
        || a.value_cache.dims() != a.key_cache.dims()
        || a.positions.elem_count() != rows
        || !a.rotary.is_multiple_of(2)
        || a.rotary > hd
        || a.inv_freq.elem_count() != a.rotary / 2
        || hd > 1024
    {
        bail!(
            "lamar kernel (attention): inconsistent sizes (cache {:?}, column {})",
            a.key_cache.dims(),
            a.column
        );
    }
    let (qg, qg_stride) = address(a.query_gate, dtype, "query/gate")?;
    let (k, k_stride) = address(a.key, dtype, "key")?;
    let (v, v_stride) = address(a.value, dtype, "value")?;
    let q_scale = contiguous_address(a.q_scale, DType::F32, "query norm")?;
    let k_scale = contiguous_address(a.k_scale, DType::F32, "key norm")?;
    let positions = contiguous_address(a.positions, DType::F32, "positions")?;
    let inv_freq = contiguous_address(a.inv_freq, DType::F32, "inverse frequencies")?;
    let key_cache = contiguous_address(a.key_cache, dtype, "key cache")?;
    let value_cache = contiguous_address(a.value_cache, dtype, "value cache")?;
    // SAFETY: every element is written by the kernel.
    let q = unsafe { Tensor::empty((rows, a.heads, 1, hd), dtype, a.query_gate.device())? };
    let q_ptr = contiguous_address(&q, dtype, "queries")?;
    let int = |n: usize| n as i32;
    let (heads, kvh, hd_i, rotary) = (int(a.heads), int(kv_heads), int(hd), int(a.rotary));
    let (capacity, column, eps) = (capacity as i64, a.column as i64, a.eps as f32);
    let func = function(&device, "attention_decode_prologue", dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&qg)
        .arg(&qg_stride)
        .arg(&k)
        .arg(&k_stride)
        .arg(&v)
        .arg(&v_stride);
    launch
        .arg(&q_scale)
        .arg(&k_scale)
        .arg(&positions)
        .arg(&inv_freq);
    launch.arg(&q_ptr).arg(&key_cache).arg(&value_cache);
    launch
        .arg(&heads)
        .arg(&kvh)
        .arg(&hd_i)
        .arg(&rotary)
        .arg(&capacity)
        .arg(&column)
        .arg(&eps);
    let config = LaunchConfig {
        grid_dim: ((a.heads + kv_heads) as u32, rows as u32, 1),
        block_dim: (hd.div_ceil(32) as u32 * 32, 1, 1),
        shared_mem_bytes: (hd * 4) as u32,
    };
    // SAFETY: the pointers and sizes were checked above; each block writes its own head.
    unsafe { launch.launch(config) }.w()?;
    Ok(q)
}
