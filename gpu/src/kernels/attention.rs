//! Launches `attention.cu`: the start of a full-attention layer's decoding step (query and key
//! norms, partial RoPE, and the new key and value written into the cache buffers) in one kernel
//! instead of about thirty candle operations.

use super::launch::{address, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{DType, Result, Tensor, bail};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/attention.ptx"));
const MODULE: &str = "lamar_attention";

/// A number a kernel needs: known on the host when launching, or read from device memory when
/// the kernel runs (a CUDA graph replays one launch for many steps, with numbers it uploads
/// before each replay).
pub enum Count<'a> {
    /// Known when launching.
    Host(usize),
    /// A `u32` `(1)` tensor holding it (below 2³¹).
    Device(&'a Tensor),
}

impl Count<'_> {
    /// The kernel arguments: the host value (0 when on the device) and the device address (0
    /// when on the host).
    fn arguments(&self, what: &str) -> Result<(i64, u64)> {
        Ok(match self {
            Count::Host(n) => (*n as i64, 0),
            Count::Device(t) => (0, contiguous_address(t, DType::U32, what)?),
        })
    }
}

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
    pub column: Count<'a>,
    /// A padding bias `(B, …, S)` (f32, rows evenly spaced) whose `column` is opened (set to
    /// 0) for every row, if any.
    pub open_bias: Option<&'a Tensor>,
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
    let (column, column_ptr) = a.column.arguments("column")?;
    if kv_heads != a.kv_heads
        || hd != a.head_dim
        || column as usize >= capacity
        || a.value_cache.dims() != a.key_cache.dims()
        || a.positions.elem_count() != rows
        || !a.rotary.is_multiple_of(2)
        || a.rotary > hd
        || a.inv_freq.elem_count() != a.rotary / 2
        || hd > 1024
    {
        bail!(
            "lamar kernel (attention): inconsistent sizes (cache {:?}, column {column})",
            a.key_cache.dims(),
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
    let (capacity, eps) = (capacity as i64, a.eps as f32);
    let (bias, bias_stride) = match a.open_bias {
        Some(b) => address(b, DType::F32, "bias")?,
        None => (0, 0),
    };
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
        .arg(&column);
    launch
        .arg(&column_ptr)
        .arg(&bias)
        .arg(&bias_stride)
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

/// The inputs of [`attention_decode`].
pub struct AttentionCore<'a> {
    /// Queries `(B, heads, 1, 256)` (what [`attention_decode_prologue`] returns).
    pub q: &'a Tensor,
    /// The key and value buffers `(B, kv_heads, capacity, 256)`.
    pub key_cache: &'a Tensor,
    /// See `key_cache`.
    pub value_cache: &'a Tensor,
    /// The additive padding bias per row and key, f32, rows evenly spaced (e.g. `(B, 1, 1, S)`).
    pub bias: &'a Tensor,
    /// Keys to read (from the first).
    pub length: Count<'a>,
    /// At most how many keys `length` can be (sizes the work split; at most the capacity).
    pub keys: usize,
    /// `q_proj`'s output `(B, 1, heads · 2 · 256)`, whose second half per head is the gate.
    pub query_gate: &'a Tensor,
}

/// Whether [`attention_decode`] has a kernel for these sizes (head_dim 256, up to 8 query
/// heads per key/value head).
pub fn attention_decode_supports(heads: usize, kv_heads: usize, head_dim: usize) -> bool {
    head_dim == 256
        && kv_heads > 0
        && heads.is_multiple_of(kv_heads)
        && [1, 2, 4, 8].contains(&(heads / kv_heads))
}

/// Attention of one new token per row over its cached keys and values (softmax of the scaled
/// scores plus bias), times the sigmoid of the output gate: `(B, 1, heads · 256)`, the input of
/// `o_proj`.
pub fn attention_decode(a: &AttentionCore) -> Result<Tensor> {
    let dtype = a.q.dtype();
    let device = cuda_device(a.q)?;
    let stream = device.cuda_stream();
    let (rows, heads, _, hd) = a.q.dims4()?;
    let (_, kv_heads, capacity, _) = a.key_cache.dims4()?;
    if !attention_decode_supports(heads, kv_heads, hd) || a.keys > capacity || a.keys == 0 {
        bail!("lamar kernel (attention): no decoding kernel for these sizes");
    }
    let group = heads / kv_heads;
    let q = contiguous_address(a.q, dtype, "queries")?;
    let key_cache = contiguous_address(a.key_cache, dtype, "key cache")?;
    let value_cache = contiguous_address(a.value_cache, dtype, "value cache")?;
    let (bias, bias_stride) = address(a.bias, DType::F32, "bias")?;
    let (gate, gate_stride) = address(a.query_gate, dtype, "query/gate")?;
    let (length, length_ptr) = a.length.arguments("length")?;
    if length as usize > a.keys {
        bail!(
            "lamar kernel (attention): {length} keys but room for {}",
            a.keys
        );
    }
    let length = length as i32;
    // Enough blocks to fill the GPU: at least ~264 (two per SM of an H100), keys split evenly.
    let wanted = 264usize.div_ceil(rows * kv_heads).max(1);
    let chunk = a.keys.div_ceil(wanted).max(32);
    let splits = a.keys.div_ceil(chunk);
    // SAFETY: every element of these is written by the kernels below before it is read.
    let partial = unsafe {
        Tensor::empty(
            (rows, kv_heads, splits, group, hd + 2),
            DType::F32,
            a.q.device(),
        )?
    };
    let out = unsafe { Tensor::empty((rows, 1, heads * hd), dtype, a.q.device())? };
    let partial_ptr = contiguous_address(&partial, DType::F32, "partial")?;
    let out_ptr = contiguous_address(&out, dtype, "out")?;
    let int = |n: usize| n as i32;
    let (heads_i, kvh_i, chunk_i, splits_i) = (int(heads), int(kv_heads), int(chunk), int(splits));
    let capacity = capacity as i64;
    let scale = (1.0 / (hd as f64).sqrt()) as f32;
    let split = function(
        &device,
        &format!("attention_decode_split{group}"),
        dtype,
        MODULE,
        PTX,
    )?;
    let mut launch = stream.launch_builder(&split);
    launch
        .arg(&q)
        .arg(&key_cache)
        .arg(&value_cache)
        .arg(&bias)
        .arg(&bias_stride);
    launch
        .arg(&partial_ptr)
        .arg(&heads_i)
        .arg(&kvh_i)
        .arg(&capacity)
        .arg(&chunk_i);
    launch.arg(&length).arg(&length_ptr).arg(&scale);
    let config = LaunchConfig {
        grid_dim: (splits as u32, kv_heads as u32, rows as u32),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the pointers and sizes were checked above; keys past the length are not read.
    unsafe { launch.launch(config) }.w()?;
    let combine = function(&device, "attention_decode_combine", dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&combine);
    launch
        .arg(&partial_ptr)
        .arg(&gate)
        .arg(&gate_stride)
        .arg(&out_ptr);
    launch.arg(&heads_i).arg(&kvh_i).arg(&splits_i);
    let config = LaunchConfig {
        grid_dim: (heads as u32, rows as u32, 1),
        block_dim: (hd as u32, 1, 1),
        shared_mem_bytes: (2 * splits * 4) as u32,
    };
    // SAFETY: as above; the shared memory holds two floats per split.
    unsafe { launch.launch(config) }.w()?;
    Ok(out)
}
