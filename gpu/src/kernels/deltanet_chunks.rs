//! Launches `deltanet_chunks.cu`: a DeltaNet layer's prefill in two kernels, the state-free
//! part of the chunked delta rule straight from the convolution's output ([`chunk_prepare`],
//! about sixty candle operations) and the pass from chunk to chunk that carries the state
//! ([`deltanet_chunks`], about eight candle operations per chunk); for training, the same pass
//! keeping what its backward needs ([`deltanet_chunks_keeping`]) and the adjoint pass
//! ([`deltanet_chunks_backward`]). `deltanet_parts.cuh` holds the state-free part's products,
//! which training's kernels (`deltanet_parts`) share.

use super::launch::{allow_shared_memory, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{DType, Result, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/deltanet_chunks.ptx"));
const MODULE: &str = "lamar_deltanet_chunks";
const TC_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/deltanet_chunks_tc.ptx"));
const TC_MODULE: &str = "lamar_deltanet_chunks_tc";

/// Which kernels run the two sequential passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKernels {
    /// Tensor cores (`deltanet_chunks_tc.cu`: 3xTF32 products, float's precision) where the
    /// sizes allow (C and dk multiples of 16, the per-chunk tensors 32-byte aligned), else the
    /// CUDA-core kernels.
    Fastest,
    /// The CUDA-core kernels (`deltanet_chunks.cu`), as the tensor-core ones' reference.
    CudaCores,
}

/// The kernel names and shared memory of one pass: the tensor-core kernel when `kernels` and
/// the sizes allow it and every address in `aligned` is a multiple of 32 bytes. `extra_slices`
/// counts the `(C × 32)` slices beyond V' (the adjoint keeps dO too).
fn pick(
    kernels: PassKernels,
    (c, dk): (usize, usize),
    aligned: &[u64],
    extra_slices: usize,
) -> (&'static str, &'static str, &'static str, usize) {
    let tensor_cores = kernels == PassKernels::Fastest
        && c.is_multiple_of(16)
        && dk.is_multiple_of(16)
        && aligned.iter().all(|p| p.is_multiple_of(32));
    if tensor_cores {
        // Rows padded by 4 floats: the state's and the (C × 32) slices' rows hold 36.
        let floats = (dk + c * (1 + extra_slices)) * 36 + 2 * c * (dk + 4) + (dk + c) * (c + 4);
        ("deltanet_chunks_tc", TC_MODULE, TC_PTX, floats * 4)
    } else {
        let floats = dk * 32 + c * 32 * (1 + extra_slices) + 3 * c * dk + c * c;
        ("deltanet_chunks", MODULE, PTX, floats * 4)
    }
}

/// The state-independent parts of every chunk, all f32 and contiguous, for `BH` sequence-heads,
/// `N` chunks of `C` tokens, keys of `dk` and values of `dv` (`qwen35::delta_rule` says how they
/// are made).
pub struct DeltaNetChunks<'a> {
    /// `U = T(βv)`, `(BH, N, C, dv)`.
    pub u: &'a Tensor,
    /// `W = T(βk ⊙ e^G)`, `(BH, N, C, dk)`.
    pub w: &'a Tensor,
    /// `q ⊙ e^G`, `(BH, N, C, dk)`.
    pub q: &'a Tensor,
    /// `(q kᵀ) ⊙ D`, zero above the diagonal, `(BH, N, C, C)`.
    pub a: &'a Tensor,
    /// `(k ⊙ e^{G_last − G})ᵀ`, `(BH, N, dk, C)`.
    pub k_carry: &'a Tensor,
    /// `e^{G_last}`, `(BH, N)` (any shape with that many elements).
    pub decay: &'a Tensor,
}

/// Runs the pass from the state `(BH, dk, dv)` (f32): the outputs `(BH, N, C, dv)` and the last
/// state (a new tensor; the input is not changed). `None` when the sizes are outside the
/// kernel's (C ≤ 64, dk ≤ 128, both multiples of 4, dv a multiple of 32) or the shared memory
/// it needs is more than the device allows: use candle operations then.
pub fn deltanet_chunks(
    chunks: &DeltaNetChunks,
    state: &Tensor,
) -> Result<Option<(Tensor, Tensor)>> {
    Ok(pass(chunks, state, false, PassKernels::Fastest)?.map(|p| (p.out, p.last)))
}

/// What the pass leaves for training's backward ([`deltanet_chunks_keeping`]).
pub struct PassTape {
    /// The outputs `(BH, N, C, dv)`.
    pub out: Tensor,
    /// The state after the last chunk `(BH, dk, dv)`.
    pub last: Tensor,
    /// The state entering each chunk: `(BH, N, dk, dv)`.
    pub states: Tensor,
    /// `V' = U − W S` of every chunk, `(BH, N, C, dv)`.
    pub fresh: Tensor,
}

/// [`deltanet_chunks`] that also keeps the state entering every chunk and each chunk's `V'`
/// (what [`deltanet_chunks_backward`] and the gradients' products need), run by `kernels`.
pub fn deltanet_chunks_keeping(
    chunks: &DeltaNetChunks,
    state: &Tensor,
    kernels: PassKernels,
) -> Result<Option<PassTape>> {
    pass(chunks, state, true, kernels)
}

/// `(BH, N, C, dk, dv)`: sequence-heads, chunks, tokens per chunk, key and value sizes.
type PassSizes = (usize, usize, usize, usize, usize);

/// The sizes of a pass's inputs, checked against each other; `None` when they are outside the
/// kernels' (C ≤ 64, dk ≤ 128, both multiples of 4, dv a multiple of 32).
fn pass_sizes(chunks: &DeltaNetChunks) -> Result<Option<PassSizes>> {
    let (bh, n, c, dv) = chunks.u.dims4()?;
    let dk = chunks.w.dim(3)?;
    if c > 64 || dk > 128 || !c.is_multiple_of(4) || !dk.is_multiple_of(4) || !dv.is_multiple_of(32)
    {
        return Ok(None);
    }
    let expect = |t: &Tensor, dims: &[usize], what: &str| -> Result<()> {
        if t.dims() != dims {
            candle_core::bail!("lamar kernel: {what} is {:?}, expected {dims:?}", t.dims());
        }
        Ok(())
    };
    expect(chunks.w, &[bh, n, c, dk], "W")?;
    expect(chunks.q, &[bh, n, c, dk], "Q")?;
    expect(chunks.a, &[bh, n, c, c], "A")?;
    expect(chunks.k_carry, &[bh, n, dk, c], "K")?;
    if chunks.decay.elem_count() != bh * n {
        candle_core::bail!(
            "lamar kernel: the chunk decays are {:?}",
            chunks.decay.dims()
        );
    }
    Ok(Some((bh, n, c, dk, dv)))
}

/// The device addresses of W, Q, A, K and the decays, or `None` when a tile would not be
/// 16-byte aligned.
fn tile_addresses(chunks: &DeltaNetChunks, decay: &Tensor) -> Result<Option<[u64; 5]>> {
    let f32 = DType::F32;
    let w = contiguous_address(chunks.w, f32, "W")?;
    let q = contiguous_address(chunks.q, f32, "Q")?;
    let a = contiguous_address(chunks.a, f32, "A")?;
    let k = contiguous_address(chunks.k_carry, f32, "K")?;
    let d = contiguous_address(decay, f32, "the chunk decays")?;
    if [w, q, a, k].iter().any(|p| !p.is_multiple_of(16)) {
        return Ok(None);
    }
    Ok(Some([w, q, a, k, d]))
}

/// The forward pass; with `keep`, the states and `V'` written too.
fn pass(
    chunks: &DeltaNetChunks,
    state: &Tensor,
    keep: bool,
    kernels: PassKernels,
) -> Result<Option<PassTape>> {
    let Some((bh, n, c, dk, dv)) = pass_sizes(chunks)? else {
        return Ok(None);
    };
    if state.dims() != [bh, dk, dv] {
        candle_core::bail!("lamar kernel: the state is {:?}", state.dims());
    }
    let f32 = DType::F32;
    let u = contiguous_address(chunks.u, f32, "U")?;
    let decay = chunks.decay.contiguous()?;
    let Some([w, q, a, k, decay_ptr]) = tile_addresses(chunks, &decay)? else {
        return Ok(None);
    };
    if !u.is_multiple_of(16) {
        return Ok(None);
    }
    // The kernel overwrites the state: give it a copy of its own.
    let last = state.contiguous()?.copy()?;
    let state_ptr = contiguous_address(&last, f32, "the state")?;
    let gpu = chunks.u.device();
    // SAFETY: every element is written by the kernel (the states and V' only when kept).
    let out = unsafe { Tensor::empty((bh, n, c, dv), f32, gpu)? };
    let out_ptr = contiguous_address(&out, f32, "the output")?;
    let kept = if keep {
        // SAFETY: as above.
        let states = unsafe { Tensor::empty((bh, n, dk, dv), f32, gpu)? };
        let fresh = unsafe { Tensor::empty((bh, n, c, dv), f32, gpu)? };
        Some((states, fresh))
    } else {
        None
    };
    let (states_ptr, fresh_ptr) = match &kept {
        Some((s, f)) => (
            contiguous_address(s, f32, "the states")?,
            contiguous_address(f, f32, "V'")?,
        ),
        None => (0u64, 0u64),
    };
    let aligned = [u, out_ptr, states_ptr, fresh_ptr];
    let (name, module, ptx, shared_bytes) = pick(kernels, (c, dk), &aligned, 0);
    let device = cuda_device(chunks.u)?;
    let stream = device.cuda_stream();
    let func = function(&device, name, DType::F32, module, ptx)?;
    if !allow_shared_memory(&device, &func, shared_bytes)? {
        return Ok(None);
    }
    let int = |x: usize| x as i32;
    let (n_i, c_i, dk_i, dv_i) = (int(n), int(c), int(dk), int(dv));
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&u)
        .arg(&w)
        .arg(&q)
        .arg(&a)
        .arg(&k)
        .arg(&decay_ptr);
    launch
        .arg(&state_ptr)
        .arg(&out_ptr)
        .arg(&states_ptr)
        .arg(&fresh_ptr);
    launch.arg(&n_i).arg(&c_i).arg(&dk_i).arg(&dv_i);
    let config = LaunchConfig {
        grid_dim: ((dv / 32) as u32, bh as u32, 1),
        block_dim: (32, 8, 1),
        shared_mem_bytes: shared_bytes as u32,
    };
    // SAFETY: shapes, contiguity and the kernel's size limits checked above; 16-byte alignment
    // holds because candle's buffers are aligned and every tile is a multiple of 4 floats.
    unsafe { launch.launch(config) }.w()?;
    let (states, fresh) = match kept {
        Some(pair) => pair,
        // Not kept: empty placeholders (the caller of `deltanet_chunks` drops them).
        None => (Tensor::zeros(0, f32, gpu)?, Tensor::zeros(0, f32, gpu)?),
    };
    Ok(Some(PassTape {
        out,
        last,
        states,
        fresh,
    }))
}

/// The adjoint of the pass for the outputs' gradient `d_out` `(BH, N, C, dv)` (f32) and the
/// final state's gradient `d_last` `(BH, dk, dv)` (f32; zero when `None`): `dV'`
/// `(BH, N, C, dv)` and the gradient of the state after every chunk `(BH, N, dk, dv)`. `U` is
/// not read; run by `kernels`. `None` where [`deltanet_chunks`] would be.
pub fn deltanet_chunks_backward(
    chunks: &DeltaNetChunks,
    d_out: &Tensor,
    d_last: Option<&Tensor>,
    kernels: PassKernels,
) -> Result<Option<(Tensor, Tensor)>> {
    let Some((bh, n, c, dk, dv)) = pass_sizes(chunks)? else {
        return Ok(None);
    };
    if d_out.dims() != [bh, n, c, dv] {
        candle_core::bail!("lamar kernel: the outputs' gradient is {:?}", d_out.dims());
    }
    let f32 = DType::F32;
    let decay = chunks.decay.contiguous()?;
    let Some([w, q, a, k, decay_ptr]) = tile_addresses(chunks, &decay)? else {
        return Ok(None);
    };
    let d_out = d_out.contiguous()?;
    let d_out_ptr = contiguous_address(&d_out, f32, "the outputs' gradient")?;
    let d_last = match d_last {
        Some(g) if g.dims() != [bh, dk, dv] => {
            candle_core::bail!("lamar kernel: the final state's gradient is {:?}", g.dims())
        }
        Some(g) => Some(g.to_dtype(f32)?.contiguous()?),
        None => None,
    };
    let d_last_ptr = match &d_last {
        Some(g) => contiguous_address(g, f32, "the final state's gradient")?,
        None => 0u64,
    };
    let gpu = chunks.u.device();
    // SAFETY: the kernel writes every element of both.
    let d_fresh = unsafe { Tensor::empty((bh, n, c, dv), f32, gpu)? };
    let d_after = unsafe { Tensor::empty((bh, n, dk, dv), f32, gpu)? };
    let d_fresh_ptr = contiguous_address(&d_fresh, f32, "dV'")?;
    let d_after_ptr = contiguous_address(&d_after, f32, "dS")?;
    let aligned = [d_out_ptr, d_fresh_ptr, d_after_ptr];
    let (name, module, ptx, shared_bytes) = pick(kernels, (c, dk), &aligned, 1);
    let device = cuda_device(chunks.u)?;
    let stream = device.cuda_stream();
    let func = function(
        &device,
        &format!("{name}_backward"),
        DType::F32,
        module,
        ptx,
    )?;
    if !allow_shared_memory(&device, &func, shared_bytes)? {
        return Ok(None);
    }
    let int = |x: usize| x as i32;
    let (n_i, c_i, dk_i, dv_i) = (int(n), int(c), int(dk), int(dv));
    let mut launch = stream.launch_builder(&func);
    launch.arg(&w).arg(&q).arg(&a).arg(&k).arg(&decay_ptr);
    launch
        .arg(&d_out_ptr)
        .arg(&d_last_ptr)
        .arg(&d_fresh_ptr)
        .arg(&d_after_ptr);
    launch.arg(&n_i).arg(&c_i).arg(&dk_i).arg(&dv_i);
    let config = LaunchConfig {
        grid_dim: ((dv / 32) as u32, bh as u32, 1),
        block_dim: (32, 8, 1),
        shared_mem_bytes: shared_bytes as u32,
    };
    // SAFETY: as in `pass`.
    unsafe { launch.launch(config) }.w()?;
    Ok(Some((d_fresh, d_after)))
}

/// Tokens per chunk, key and value sizes of [`chunk_prepare`] (Qwen3.5's).
const PREPARE_CHUNK: usize = 64;
const PREPARE_DIM: usize = 128;
/// Shared memory of `deltanet_chunk_prepare` in floats (`PREP_SHARED` in the kernel).
const PREPARE_SHARED: usize = 3 * 64 * 129 + 2 * 64 * 65 + 4 * 64;

/// What [`chunk_prepare`] reads: a DeltaNet layer's prefill after the convolution.
pub struct ChunkInputs<'a> {
    /// The convolution's output `(B, T, 2·nk·dk + nv·dv)`, contiguous, the model's dtype.
    pub mixed: &'a Tensor,
    /// `in_proj_b` and `in_proj_a` outputs `(B, T, nv)` (rows evenly spaced), the model's dtype.
    pub beta: &'a Tensor,
    /// See `beta`.
    pub a: &'a Tensor,
    /// `−exp(A_log)` and `dt_bias`, `(nv)` f32.
    pub neg_a: &'a Tensor,
    /// See `neg_a`.
    pub dt_bias: &'a Tensor,
    /// Query/key heads and value heads.
    pub key_heads: usize,
    /// See `key_heads`.
    pub value_heads: usize,
}

/// The state-free part of the chunked delta rule straight from the convolution's output (the
/// L2 norms, gates and decays included), in chunks of 64 tokens: `[U, W, Q, A, K, d]` as
/// [`DeltaNetChunks`] takes them, for `B·nv` sequence-heads. `None` unless dk = dv = 128 (the
/// kernel's sizes).
pub fn chunk_prepare(
    inputs: &ChunkInputs,
    key_dim: usize,
    value_dim: usize,
) -> Result<Option<[Tensor; 6]>> {
    let (nk, nv) = (inputs.key_heads, inputs.value_heads);
    if key_dim != PREPARE_DIM || value_dim != PREPARE_DIM || nk == 0 || !nv.is_multiple_of(nk) {
        return Ok(None);
    }
    let dtype = inputs.mixed.dtype();
    let (b, t, channels) = inputs.mixed.dims3()?;
    if channels != (2 * nk + nv) * PREPARE_DIM {
        candle_core::bail!("lamar kernel (chunk prepare): {channels} channels for {nk}/{nv} heads");
    }
    for (x, what) in [(inputs.beta, "beta"), (inputs.a, "a")] {
        if x.dims() != [b, t, nv] {
            candle_core::bail!("lamar kernel (chunk prepare): {what} is {:?}", x.dims());
        }
    }
    let device = cuda_device(inputs.mixed)?;
    let stream = device.cuda_stream();
    let func = function(&device, "deltanet_chunk_prepare", dtype, MODULE, PTX)?;
    let shared_bytes = PREPARE_SHARED * 4;
    if !allow_shared_memory(&device, &func, shared_bytes)? {
        return Ok(None);
    }
    let mixed = contiguous_address(inputs.mixed, dtype, "the convolution output")?;
    let (beta, beta_stride) = super::launch::address(inputs.beta, dtype, "beta")?;
    let (a, a_stride) = super::launch::address(inputs.a, dtype, "a")?;
    let neg_a = contiguous_address(inputs.neg_a, DType::F32, "neg_a")?;
    let dt_bias = contiguous_address(inputs.dt_bias, DType::F32, "dt_bias")?;
    let (c, d) = (PREPARE_CHUNK, PREPARE_DIM);
    let n = t.div_ceil(c);
    let bh = b * nv;
    let gpu = inputs.mixed.device();
    // SAFETY: the kernel writes every element of each.
    let outputs = unsafe {
        [
            Tensor::empty((bh, n, c, d), DType::F32, gpu)?,
            Tensor::empty((bh, n, c, d), DType::F32, gpu)?,
            Tensor::empty((bh, n, c, d), DType::F32, gpu)?,
            Tensor::empty((bh, n, c, c), DType::F32, gpu)?,
            Tensor::empty((bh, n, d, c), DType::F32, gpu)?,
            Tensor::empty((bh, n), DType::F32, gpu)?,
        ]
    };
    let names = ["U", "W", "Q", "A", "K", "d"];
    let mut ptrs = [0u64; 6];
    for (slot, (x, what)) in ptrs.iter_mut().zip(outputs.iter().zip(names)) {
        *slot = contiguous_address(x, DType::F32, what)?;
    }
    let int = |x: usize| x as i32;
    let (t_i, nk_i, nv_i) = (int(t), int(nk), int(nv));
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&mixed)
        .arg(&beta)
        .arg(&beta_stride)
        .arg(&a)
        .arg(&a_stride);
    launch.arg(&neg_a).arg(&dt_bias);
    for p in &ptrs {
        launch.arg(p);
    }
    launch.arg(&t_i).arg(&nk_i).arg(&nv_i);
    let config = LaunchConfig {
        grid_dim: (n as u32, nv as u32, b as u32),
        block_dim: (256, 1, 1),
        shared_mem_bytes: shared_bytes as u32,
    };
    // SAFETY: sizes and shapes checked above; each block writes its own chunk of every output.
    unsafe { launch.launch(config) }.w()?;
    Ok(Some(outputs))
}
