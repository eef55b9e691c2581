//! Launches `adamw.cu`: the global gradient norm with one transfer to the host, and AdamW's
//! update of each adapter tensor in place in one kernel (about a dozen candle operations, each
//! a pass over the tensor, in `train::optim`'s reference path).

use super::launch::{contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{DType, Result, Tensor, bail};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/adamw.ptx"));
const MODULE: &str = "lamar_adamw";
const THREADS: u32 = 256;

/// `Σ‖t‖²` over `tensors` (f32, contiguous, on one CUDA device), summed in f64 on the device and
/// read back once.
pub fn sum_of_squares(tensors: &[&Tensor]) -> Result<f64> {
    let Some(first) = tensors.first() else {
        return Ok(0.0);
    };
    let device = cuda_device(first)?;
    let stream = device.cuda_stream();
    let total = Tensor::zeros(1, DType::F64, first.device())?;
    let total_ptr = contiguous_address(&total, DType::F64, "sum")?;
    let func = function(&device, "sum_squares", DType::F32, MODULE, PTX)?;
    for (k, t) in tensors.iter().enumerate() {
        let ptr = contiguous_address(t, DType::F32, &format!("tensor {k}"))?;
        let n = t.elem_count() as i64;
        if n == 0 {
            continue;
        }
        let blocks = (t.elem_count().div_ceil(THREADS as usize * 4)).clamp(1, 2048) as u32;
        let mut launch = stream.launch_builder(&func);
        launch.arg(&ptr).arg(&n).arg(&total_ptr);
        let config = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: `ptr` holds `n` f32 values and `total_ptr` one f64 (checked above).
        unsafe { launch.launch(config) }.w()?;
    }
    total.to_vec1::<f64>().map(|v| v[0])
}

/// One AdamW step's constants (see `adamw.cu`), computed in f64 by the caller.
#[derive(Debug, Clone, Copy)]
pub struct AdamWScalars {
    /// Factor applied to the gradient first (global-norm clipping; 1 when not clipping).
    pub grad_scale: f64,
    /// `β₁`.
    pub beta1: f64,
    /// `β₂`.
    pub beta2: f64,
    /// `ε`.
    pub eps: f64,
    /// `1 − lr·λ` (decoupled weight decay).
    pub decay: f64,
    /// `lr / (1 − β₁ᵗ)`.
    pub step_size: f64,
    /// `√(1 − β₂ᵗ)`.
    pub correction2_sqrt: f64,
}

/// Updates `param`, `m` and `v` in place with `grad` (all f32, contiguous, of one shape, on one
/// CUDA device). `param` must be a variable's own storage (a candle `Var`): the update is
/// visible through every tensor sharing it, as `Var::set` is.
pub fn adamw_in_place(
    param: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    s: &AdamWScalars,
) -> Result<()> {
    for (what, t) in [("gradient", grad), ("m", m), ("v", v)] {
        if t.dims() != param.dims() {
            bail!(
                "lamar kernel (adamw): {what} {:?} for a parameter {:?}",
                t.dims(),
                param.dims()
            );
        }
    }
    let device = cuda_device(param)?;
    let stream = device.cuda_stream();
    let grad = if grad.is_contiguous() {
        grad.clone()
    } else {
        grad.contiguous()?
    };
    let pointers = [
        contiguous_address(param, DType::F32, "parameter")?,
        contiguous_address(&grad, DType::F32, "gradient")?,
        contiguous_address(m, DType::F32, "m")?,
        contiguous_address(v, DType::F32, "v")?,
    ];
    // The kernel reads four values at a time from 16-byte aligned addresses.
    let grad = if pointers.iter().any(|p| p % 16 != 0) {
        if pointers[1] % 16 == 0 {
            bail!("lamar kernel (adamw): the parameter or its moments are not 16-byte aligned");
        }
        grad.copy()?
    } else {
        grad
    };
    let grad_ptr = contiguous_address(&grad, DType::F32, "gradient")?;
    let n = param.elem_count();
    if n == 0 {
        return Ok(());
    }
    let n_i = n as i64;
    let f = |x: f64| x as f32;
    let func = function(&device, "adamw", DType::F32, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&pointers[0])
        .arg(&grad_ptr)
        .arg(&pointers[2])
        .arg(&pointers[3]);
    let scalars = [
        f(s.grad_scale),
        f(s.beta1),
        f(s.beta2),
        f(s.eps),
        f(s.decay),
        f(s.step_size),
        f(s.correction2_sqrt),
    ];
    launch.arg(&n_i);
    for x in &scalars {
        launch.arg(x);
    }
    let threads = n.div_ceil(4);
    let config = LaunchConfig {
        grid_dim: (threads.div_ceil(THREADS as usize) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the four pointers hold `n` f32 values each (shapes and dtypes checked above).
    unsafe { launch.launch(config) }.w()?;
    Ok(())
}
