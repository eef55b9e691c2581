//! Launches `gemv.cu`: a projection `x · wᵀ` of at most eight rows (a decoding step's batch),
//! streaming the weight at close to the memory bandwidth (cuBLAS reaches 2.0–2.8 TB/s on these
//! shapes at one row on an H100: BENCHMARKS.md); and [`gemv_swiglu`], the MLP's stacked gate/up
//! product finished with its activation in the same kernel.

use super::launch::{address, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{D, DType, Result, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/gemv.ptx"));
const MODULE: &str = "lamar_gemv";

/// Most rows [`gemv`] takes.
pub const MAX_ROWS: usize = 8;

/// How [`gemv_planned`] spreads a product over warps (`gemv.cu` explains): `split` warps share
/// each group of `columns` neighbouring output columns, each streaming one `split`-th of K.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemvPlan {
    /// Warps per column group (1, 2 or 4: a block's four warps hold `4 / split` groups).
    pub split: usize,
    /// Output columns per group (1 or 2).
    pub columns: usize,
}

impl GemvPlan {
    /// Every plan `gemv.cu` has a kernel for.
    pub const ALL: [GemvPlan; 4] = [
        GemvPlan::new(1, 1),
        GemvPlan::new(2, 2),
        GemvPlan::new(4, 1),
        GemvPlan::new(4, 2),
    ];

    const fn new(split: usize, columns: usize) -> Self {
        GemvPlan { split, columns }
    }

    /// The plan [`gemv`] uses for an `(N, K)` weight: four warps share two columns. Of the
    /// plans measured on an H100 (nine, on all seven weight shapes of Qwen3.5-4B at one row:
    /// BENCHMARKS.md), it was the fastest or within 1 % of it on every shape.
    pub fn for_shape(_n: usize, _k: usize) -> Self {
        GemvPlan::new(4, 2)
    }
}

/// What a product's sums become (`gemv.cu` explains).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Product {
    Plain,
    SwiGlu,
}

impl Product {
    fn name(&self) -> &'static str {
        match self {
            Product::Plain => "gemv",
            Product::SwiGlu => "swiglu",
        }
    }
}

/// `x · wᵀ` for `x` `(…, K)` with at most [`MAX_ROWS`] rows (all axes but the last) and `w`
/// `(N, K)`, both f32 or both bf16: `(…, N)`. `None` when the kernel does not apply (other
/// dtypes or sizes, K not a multiple of 8, unaligned rows, more rows): use a general matrix
/// product then.
pub fn gemv(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    let Ok((n, k)) = w.dims2() else {
        return Ok(None);
    };
    gemv_planned(x, w, GemvPlan::for_shape(n, k))
}

/// [`gemv`] with a given plan (the bench compares them).
pub fn gemv_planned(x: &Tensor, w: &Tensor, plan: GemvPlan) -> Result<Option<Tensor>> {
    launch(x, w, plan, Product::Plain)
}

/// The MLP's `round(silu(gate)) · up` straight from `x` and the stacked gate/up weight
/// `w = [gate; up]` `(2·N, K)`: `(…, N)`, as `silu_mul` of [`gemv`]'s two halves gives it, in
/// one kernel. `None` where [`gemv`] would not apply (or `w` has an odd number of rows).
pub fn gemv_swiglu(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    let Ok((n, k)) = w.dims2() else {
        return Ok(None);
    };
    if !n.is_multiple_of(2) {
        return Ok(None);
    }
    launch(x, w, GemvPlan::for_shape(n / 2, k), Product::SwiGlu)
}

fn launch(x: &Tensor, w: &Tensor, plan: GemvPlan, product: Product) -> Result<Option<Tensor>> {
    let swiglu = product == Product::SwiGlu;
    if !GemvPlan::ALL.contains(&plan) || (swiglu && plan != GemvPlan::new(4, 2)) {
        candle_core::bail!(
            "lamar kernel: no matrix-vector kernel for {plan:?} ({})",
            product.name()
        );
    }
    let dtype = x.dtype();
    let Ok((weight_rows, k)) = w.dims2() else {
        return Ok(None);
    };
    // Output columns, and columns per group (SwiGLU: each takes a (gate, up) pair of streams).
    let (n, group_columns) = match product {
        Product::Plain => (weight_rows, plan.columns),
        Product::SwiGlu => (weight_rows / 2, plan.columns / 2),
    };
    let rows = x.elem_count() / k.max(1);
    let size = dtype.size_in_bytes();
    if w.dtype() != dtype
        || !matches!(dtype, DType::BF16 | DType::F32)
        || x.dim(D::Minus1)? != k
        || rows == 0
        || rows > MAX_ROWS
        || !k.is_multiple_of(8)
        || !w.is_contiguous()
        || !x.device().is_cuda()
    {
        return Ok(None);
    }
    let Ok((x_ptr, x_stride)) = address(x, dtype, "input") else {
        return Ok(None);
    };
    let w_ptr = contiguous_address(w, dtype, "weight")?;
    if !x_ptr.is_multiple_of(16)
        || !w_ptr.is_multiple_of(16)
        || !(x_stride as usize * size).is_multiple_of(16)
    {
        return Ok(None);
    }
    let device = cuda_device(x)?;
    let stream = device.cuda_stream();
    let mut shape = x.dims().to_vec();
    *shape.last_mut().expect("x has a last axis") = n;
    // SAFETY: every element is written by the kernel.
    let y = unsafe { Tensor::empty(shape, dtype, x.device())? };
    let y_ptr = contiguous_address(&y, dtype, "output")?;
    let (y_stride, n_i, k_i) = (n as i64, n as i32, k as i32);
    let name = format!("{}{rows}_s{}m{}", product.name(), plan.split, plan.columns);
    let func = function(&device, &name, dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&x_ptr)
        .arg(&x_stride)
        .arg(&w_ptr)
        .arg(&y_ptr)
        .arg(&y_stride);
    launch.arg(&n_i).arg(&k_i);
    let config = LaunchConfig {
        grid_dim: (
            n.div_ceil(group_columns).div_ceil(4 / plan.split) as u32,
            1,
            1,
        ),
        block_dim: (32, 4, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: sizes, alignment and rows checked above; each group writes its own columns.
    unsafe { launch.launch(config) }.w()?;
    Ok(Some(y))
}
