//! Launches `lora.cu`: an unmerged LoRA adapter's delta `s·(x Aᵀ) Bᵀ` added to the base
//! projection `y` of a few rows in one kernel (six candle operations otherwise). GRPO's rollouts
//! apply the policy's adapter this way on every projection of every decoding step, inside the
//! step's CUDA graph.

use super::launch::{address, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{D, DType, Result, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/lora.ptx"));
const MODULE: &str = "lamar_lora";

/// Most `rows × rank` products one launch holds (`LOW_MAX` in `lora.cu`).
const LOW_MAX: usize = 512;
/// Most rows [`lora_add`] takes: every block recomputes `x Aᵀ`, which stays cheap only for a
/// decoding step's few rows.
pub const MAX_ROWS: usize = 32;
/// Threads per block (`THREADS` in `lora.cu`): each finishes one output column.
const THREADS: usize = 256;

/// Whether [`lora_add`] takes `rows` rows of an adapter of rank `rank` (dtypes and device
/// aside).
pub fn fits(rows: usize, rank: usize) -> bool {
    rows > 0 && rows <= MAX_ROWS && rank > 0 && rows * rank <= LOW_MAX
}

/// `y + round(s·(x Aᵀ) Bᵀ)` for `x` `(…, K)` and the base projection `y` `(…, N)` in one dtype
/// (f32 or bf16, last axes contiguous, rows evenly spaced: `y` may be a column slice of a stacked
/// projection), `a` `(rank, K)` and `b` `(N, rank)` in f32: `(…, N)`, contiguous. `None` where
/// the kernel does not apply (other dtypes, more than [`MAX_ROWS`] rows, rank too large, K not a
/// multiple of 8, rows not 16-byte aligned, not on CUDA): compute the delta with general
/// products then.
pub fn lora_add(
    x: &Tensor,
    y: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
) -> Result<Option<Tensor>> {
    let dtype = x.dtype();
    let (Ok((rank, k)), Ok((n, rank_b))) = (a.dims2(), b.dims2()) else {
        return Ok(None);
    };
    let rows = x.elem_count() / k.max(1);
    if y.dtype() != dtype
        || !matches!(dtype, DType::BF16 | DType::F32)
        || a.dtype() != DType::F32
        || b.dtype() != DType::F32
        || rank_b != rank
        || !fits(rows, rank)
        || x.dim(D::Minus1)? != k
        || y.dim(D::Minus1)? != n
        || y.elem_count() != rows * n
        || !x.device().is_cuda()
        || !k.is_multiple_of(8)
        || !a.is_contiguous()
        || !b.is_contiguous()
    {
        return Ok(None);
    }
    let (Ok((x_ptr, x_stride)), Ok((y_ptr, y_stride))) =
        (address(x, dtype, "input"), address(y, dtype, "projection"))
    else {
        return Ok(None);
    };
    let a_ptr = contiguous_address(a, DType::F32, "lora_A")?;
    let b_ptr = contiguous_address(b, DType::F32, "lora_B")?;
    // The kernel reads x and A eight values at a time.
    if !x_ptr.is_multiple_of(16)
        || !(x_stride as usize * dtype.size_in_bytes()).is_multiple_of(16)
        || !a_ptr.is_multiple_of(16)
    {
        return Ok(None);
    }
    let device = cuda_device(x)?;
    let stream = device.cuda_stream();
    // SAFETY: every element is written by the kernel.
    let out = unsafe { Tensor::empty(y.dims(), dtype, x.device())? };
    let out_ptr = contiguous_address(&out, dtype, "output")?;
    let func = function(&device, "lora_add", dtype, MODULE, PTX)?;
    let (rows_i, rank_i, n_i, k_i) = (rows as i32, rank as i32, n as i32, k as i32);
    let scale = scale as f32;
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&x_ptr)
        .arg(&x_stride)
        .arg(&y_ptr)
        .arg(&y_stride)
        .arg(&a_ptr)
        .arg(&b_ptr)
        .arg(&out_ptr)
        .arg(&rows_i)
        .arg(&rank_i)
        .arg(&n_i)
        .arg(&k_i)
        .arg(&scale);
    let config = LaunchConfig {
        grid_dim: (n.div_ceil(THREADS) as u32, 1, 1),
        block_dim: (THREADS as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: sizes, dtypes and rows checked above; each thread writes its own column.
    unsafe { launch.launch(config) }.w()?;
    Ok(Some(out))
}
