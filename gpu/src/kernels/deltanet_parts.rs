//! Launches `deltanet_parts.cu`: the state-free part of the chunked delta rule for training
//! (`train::delta_rule`), forward ([`parts_forward`], about sixty candle operations of
//! `qwen35::delta_rule::ChunkParts`) and backward ([`parts_backward`], about seventy of
//! `train::delta_rule`'s written derivative), one block per chunk of 64 tokens and
//! sequence-head, for Qwen3.5's sizes (keys and values of 128).

use super::launch::{allow_shared_memory, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{DType, Result, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/deltanet_parts.ptx"));
const MODULE: &str = "lamar_deltanet_parts";

/// Tokens per chunk and the key and value size the kernels take.
const CHUNK: usize = 64;
const DIM: usize = 128;
/// Shared memory in floats: `PREP_SHARED` and `BACK_SHARED` in the kernels.
const FORWARD_SHARED: usize = 3 * 64 * 129 + 2 * 64 * 65 + 4 * 64;
const BACKWARD_SHARED: usize = 3 * 64 * 129 + 4 * 64 * 65 + 6 * 64;

/// The delta rule's five inputs, f32 and contiguous: `q`, `k`, `v` `(B, H, T, 128)` (queries
/// scaled), `β` and `g` `(B, H, T)`.
pub struct PartsInputs<'a> {
    /// Queries, normed and scaled.
    pub q: &'a Tensor,
    /// Keys, normed.
    pub k: &'a Tensor,
    /// Values.
    pub v: &'a Tensor,
    /// Write strengths in (0, 1).
    pub beta: &'a Tensor,
    /// Log-decays ≤ 0.
    pub g: &'a Tensor,
}

impl PartsInputs<'_> {
    /// `(B·H, T)`, or `None` unless the sizes are the kernels' (`dk = dv = 128`); an error when
    /// the shapes disagree or an input is not f32 and contiguous.
    fn sizes(&self) -> Result<Option<(usize, usize)>> {
        let (b, h, t, dk) = self.q.dims4()?;
        let dv = self.v.dim(3)?;
        if dk != DIM || dv != DIM || t == 0 {
            return Ok(None);
        }
        for (x, dims, what) in [
            (self.k, vec![b, h, t, dk], "k"),
            (self.v, vec![b, h, t, dv], "v"),
            (self.beta, vec![b, h, t], "beta"),
            (self.g, vec![b, h, t], "g"),
        ] {
            if x.dims() != dims.as_slice() {
                candle_core::bail!("lamar kernel (delta rule parts): {what} is {:?}", x.dims());
            }
        }
        Ok(Some((b * h, t)))
    }

    /// The five device addresses.
    fn addresses(&self) -> Result<[u64; 5]> {
        let f32 = DType::F32;
        Ok([
            contiguous_address(self.q, f32, "q")?,
            contiguous_address(self.k, f32, "k")?,
            contiguous_address(self.v, f32, "v")?,
            contiguous_address(self.beta, f32, "beta")?,
            contiguous_address(self.g, f32, "g")?,
        ])
    }
}

/// The state-free part in chunks of 64 tokens: `[U, W, Q, A, Kᵀ, d]` as
/// `kernels::deltanet_chunks::DeltaNetChunks` takes them (`(BH, N, 64, 128)` three times,
/// `(BH, N, 64, 64)`, `(BH, N, 128, 64)`, `(BH, N)`). `None` unless the sizes are the kernel's
/// or when the device lacks the shared memory.
pub fn parts_forward(inputs: &PartsInputs) -> Result<Option<[Tensor; 6]>> {
    let Some((bh, t)) = inputs.sizes()? else {
        return Ok(None);
    };
    let device = cuda_device(inputs.q)?;
    let func = function(&device, "deltanet_parts_forward", DType::F32, MODULE, PTX)?;
    let shared_bytes = FORWARD_SHARED * 4;
    if !allow_shared_memory(&device, &func, shared_bytes)? {
        return Ok(None);
    }
    let ins = inputs.addresses()?;
    let n = t.div_ceil(CHUNK);
    let (c, d) = (CHUNK, DIM);
    let gpu = inputs.q.device();
    let f32 = DType::F32;
    // SAFETY: the kernel writes every element of each.
    let outputs = unsafe {
        [
            Tensor::empty((bh, n, c, d), f32, gpu)?,
            Tensor::empty((bh, n, c, d), f32, gpu)?,
            Tensor::empty((bh, n, c, d), f32, gpu)?,
            Tensor::empty((bh, n, c, c), f32, gpu)?,
            Tensor::empty((bh, n, d, c), f32, gpu)?,
            Tensor::empty((bh, n), f32, gpu)?,
        ]
    };
    let outs = addresses(&outputs, ["U", "W", "Q", "A", "K", "d"])?;
    // SAFETY: shapes, dtypes and contiguity checked above; each block writes its own chunk.
    unsafe {
        launch_per_chunk(
            &device,
            &func,
            [&ins[..], &outs].concat(),
            t,
            bh,
            shared_bytes,
        )
    }?;
    Ok(Some(outputs))
}

/// The gradients `[dq, dk, dv, dβ, dg]` of the five inputs (each of its input's shape) from
/// those of [`parts_forward`]'s six outputs (the same shapes; `dd` any shape of `BH·N`
/// elements). `None` where [`parts_forward`] would be.
pub fn parts_backward(inputs: &PartsInputs, grads: &[Tensor; 6]) -> Result<Option<[Tensor; 5]>> {
    let Some((bh, t)) = inputs.sizes()? else {
        return Ok(None);
    };
    let n = t.div_ceil(CHUNK);
    let (c, d) = (CHUNK, DIM);
    let shapes: [&[usize]; 5] = [
        &[bh, n, c, d],
        &[bh, n, c, d],
        &[bh, n, c, d],
        &[bh, n, c, c],
        &[bh, n, d, c],
    ];
    let names = ["dU", "dW", "dQ", "dA", "dK"];
    for ((g, shape), what) in grads.iter().zip(shapes).zip(names) {
        if g.dims() != shape {
            candle_core::bail!("lamar kernel (delta rule parts): {what} is {:?}", g.dims());
        }
    }
    if grads[5].elem_count() != bh * n {
        candle_core::bail!(
            "lamar kernel (delta rule parts): dd is {:?}",
            grads[5].dims()
        );
    }
    let device = cuda_device(inputs.q)?;
    let func = function(&device, "deltanet_parts_backward", DType::F32, MODULE, PTX)?;
    let shared_bytes = BACKWARD_SHARED * 4;
    if !allow_shared_memory(&device, &func, shared_bytes)? {
        return Ok(None);
    }
    let f32 = DType::F32;
    let ins = inputs.addresses()?;
    let grads: Vec<Tensor> = grads
        .iter()
        .map(|g| g.to_dtype(f32)?.contiguous())
        .collect::<Result<_>>()?;
    let grad_ptrs = addresses(&grads, ["dU", "dW", "dQ", "dA", "dK", "dd"])?;
    let gpu = inputs.q.device();
    // SAFETY: the kernel writes every element of each (rows past T are not part of them).
    let outputs = unsafe {
        [
            Tensor::empty(inputs.q.shape(), f32, gpu)?,
            Tensor::empty(inputs.k.shape(), f32, gpu)?,
            Tensor::empty(inputs.v.shape(), f32, gpu)?,
            Tensor::empty(inputs.beta.shape(), f32, gpu)?,
            Tensor::empty(inputs.g.shape(), f32, gpu)?,
        ]
    };
    let outs = addresses(&outputs, ["dq", "dk", "dv", "dbeta", "dg"])?;
    let pointers = [&ins[..], &grad_ptrs, &outs].concat();
    // SAFETY: shapes, dtypes and contiguity checked above; each block writes its own tokens.
    unsafe { launch_per_chunk(&device, &func, pointers, t, bh, shared_bytes) }?;
    Ok(Some(outputs))
}

/// The device addresses of `tensors` (f32, contiguous), named for errors.
fn addresses<const N: usize>(tensors: &[Tensor], names: [&str; N]) -> Result<[u64; N]> {
    let mut out = [0u64; N];
    for ((slot, x), what) in out.iter_mut().zip(tensors).zip(names) {
        *slot = contiguous_address(x, DType::F32, what)?;
    }
    Ok(out)
}

/// Launches `func` with `pointers` then the token count, one block of 256 threads per chunk of
/// 64 tokens and sequence-head.
///
/// # Safety
/// `pointers` must be the kernel's buffers, in its order, checked for shape, dtype and
/// contiguity.
unsafe fn launch_per_chunk(
    device: &candle_core::CudaDevice,
    func: &candle_core::cuda_backend::cudarc::driver::CudaFunction,
    pointers: Vec<u64>,
    tokens: usize,
    bh: usize,
    shared_bytes: usize,
) -> Result<()> {
    let tokens_i = tokens as i32;
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(func);
    for p in &pointers {
        launch.arg(p);
    }
    launch.arg(&tokens_i);
    let config = LaunchConfig {
        grid_dim: (tokens.div_ceil(CHUNK) as u32, bh as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: shared_bytes as u32,
    };
    // SAFETY: the caller's promise.
    unsafe { launch.launch(config) }.w()?;
    Ok(())
}
