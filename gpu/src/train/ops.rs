//! Differentiable forms of the fused operations the model uses for inference.
//!
//! candle's `candle_nn::ops::rms_norm` and `softmax_last_dim` are custom operations without a
//! backward: a gradient that reaches them stops there, silently. The forms here are made of
//! operations candle differentiates (powers, means, roots, divisions, exponentials), and the
//! model picks them only when a tensor is tracked ([`Tensor::track_op`]), so inference keeps
//! the fused kernels and training gets exact gradients. Training part 2 replaces each body with
//! a fused kernel that has its own backward, one at a time, under the same names.

use candle_core::{D, Result, Tensor};

/// `x / sqrt(mean(x²) + eps) · scale` over the last dimension, in `x`'s dtype: candle's fused
/// RMS norm forward, with a backward written out (candle's fused norm has none), differentiable
/// in `x` and `scale`. With `r = 1 / sqrt(mean(x²) + eps)` per row and `gs = ∂L/∂y ⊙ scale`:
/// `∂L/∂x = r·gs − x·r³·mean(gs ⊙ x)`, `∂L/∂scale = Σ_rows ∂L/∂y ⊙ x·r`. It keeps only its
/// input for the backward pass (the composed form kept five intermediates of the input's size).
pub fn rms_norm(x: &Tensor, scale: &Tensor, eps: f64) -> Result<Tensor> {
    let (x0, scale0) = (x.detach().contiguous()?, scale.detach().contiguous()?);
    let out = if x0.dtype() == candle_core::DType::F64 {
        // candle's fused norm has no f64 form (the gradient tests run in f64).
        let r = (x0.sqr()?.mean_keepdim(D::Minus1)? + eps)?
            .sqrt()?
            .recip()?;
        x0.broadcast_mul(&r)?.broadcast_mul(&scale0)?
    } else {
        candle_nn::ops::rms_norm(&x0, &scale0, eps as f32)?
    };
    if !tracked(&[x, scale]) {
        return Ok(out);
    }
    x.apply_op2(
        scale,
        RmsNorm {
            x: x0,
            scale: scale0,
            eps,
            out: Computed::new(out),
        },
    )
}

/// The fused RMS norm's result passed through; its backward is written out.
struct RmsNorm {
    x: Tensor,
    scale: Tensor,
    eps: f64,
    out: Computed,
}

impl candle_core::CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    computed_forward!(2, out, "rms_norm");

    fn bwd(
        &self,
        _: &Tensor,
        scale: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.to_dtype(self.x.dtype())?;
        // A constant scale (the model's norms) gets no gradient: nobody would read it.
        let keep_scale = |d_scale: Tensor| scale.track_op().then_some(d_scale);
        #[cfg(feature = "cuda")]
        if self.x.device().is_cuda()
            && let Some((dx, d_scale)) =
                crate::kernels::norm::rms_norm_backward(&self.x, &grad, &self.scale, self.eps)?
        {
            return Ok((Some(dx), keep_scale(d_scale.reshape(self.scale.shape())?)));
        }
        let (dx, d_scale) = rms_norm_backward_plain(&self.x, &grad, &self.scale, self.eps)?;
        Ok((Some(dx), keep_scale(d_scale)))
    }
}

/// [`rms_norm`]'s gradients with respect to `x` and `scale` for the output's gradient `grad`
/// (in `x`'s dtype), as candle operations: the CPU path, and the reference of the CUDA kernel
/// (`kernels::norm::rms_norm_backward`).
pub(crate) fn rms_norm_backward_plain(
    x: &Tensor,
    grad: &Tensor,
    scale: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    let r = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    let gs = grad.broadcast_mul(scale)?;
    let m = (&gs * x)?.mean_keepdim(D::Minus1)?;
    let dx = (gs.broadcast_mul(&r)? - x.broadcast_mul(&(m * r.powf(3.0)?)?)?)?;
    let width = x.dim(D::Minus1)?;
    let d_scale = (grad * x.broadcast_mul(&r)?)?
        .reshape(((), width))?
        .sum(0)?
        .reshape(scale.shape())?;
    Ok((dx, d_scale))
}

/// Softmax over the last dimension, differentiable: the row maximum (not differentiated: the
/// result does not depend on it) is subtracted before the exponential, so `−∞` entries give 0
/// and no overflow.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let exp = x.broadcast_sub(&max)?.exp()?;
    exp.broadcast_div(&exp.sum_keepdim(D::Minus1)?)
}

/// `x · Wᵀ` for a frozen weight `W` `(out, in)`, differentiable in `x` only.
///
/// candle's matrix-product backward computes the gradient of both factors, so a plain product
/// with a frozen weight would spend a second product of the same size on a weight gradient
/// nobody reads, and keep it until the end of the backward pass (about the model's size in
/// memory). Here the product runs untracked, and a custom operation that passes it through
/// carries only `∂L/∂x = ∂L/∂y · W` back.
pub fn frozen_linear(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let y = x.detach().broadcast_matmul(&weight.t()?)?.contiguous()?;
    pass_frozen(x, &y, weight)
}

/// `product` (`x · Wᵀ`, computed untracked, whole and contiguous) passed through as a
/// function of `x`: its gradient is `∂L/∂x = ∂L/∂product · W` ([`frozen_linear`]'s operation).
pub fn pass_frozen(x: &Tensor, product: &Tensor, weight: &Tensor) -> Result<Tensor> {
    x.apply_op2(
        product,
        PassThrough {
            weight: weight.clone(),
        },
    )
}

/// The second argument unchanged; the gradient of the first is `grad · weight`.
struct PassThrough {
    weight: Tensor,
}

fn whole(layout: &candle_core::Layout) -> Result<()> {
    if layout.is_contiguous() && layout.start_offset() == 0 {
        Ok(())
    } else {
        candle_core::bail!("frozen_linear: the product is not a whole contiguous tensor")
    }
}

impl candle_core::CustomOp2 for PassThrough {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        _: &candle_core::CpuStorage,
        _: &candle_core::Layout,
        product: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        whole(layout)?;
        Ok((product.clone(), layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &candle_core::Layout,
        product: &candle_core::CudaStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CudaStorage, candle_core::Shape)> {
        use candle_core::backend::BackendStorage;
        whole(layout)?;
        Ok((product.try_clone(layout)?, layout.shape().clone()))
    }

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let weight = self.weight.to_dtype(grad.dtype())?;
        Ok((Some(grad.broadcast_matmul(&weight)?), None))
    }
}

/// The result of a custom operation computed before the operation runs (with tensors, outside
/// it), handed over once by its forward pass: candle's custom operations return new storage,
/// so the forward pass copies it and drops this one, which the operation would otherwise keep
/// until the backward pass.
pub(crate) struct Computed(std::sync::Mutex<Option<Tensor>>);

impl Computed {
    /// Holds `t` (whole and contiguous) for the forward pass.
    pub(crate) fn new(t: Tensor) -> Self {
        Computed(std::sync::Mutex::new(Some(t)))
    }

    fn take(&self, what: &str) -> Result<Tensor> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| candle_core::Error::Msg(format!("{what}: the forward pass ran twice")))
    }

    /// The result's storage on the CPU; `what` names the operation in errors.
    pub(crate) fn cpu(&self, what: &str) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let t = self.take(what)?;
        let (storage, layout) = t.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cpu(s)
                if layout.is_contiguous() && layout.start_offset() == 0 =>
            {
                Ok((s.clone(), layout.shape().clone()))
            }
            _ => candle_core::bail!("{what}: the output is not a whole CPU tensor"),
        }
    }

    /// [`Computed::cpu`] on CUDA.
    #[cfg(feature = "cuda")]
    pub(crate) fn cuda(
        &self,
        what: &str,
    ) -> Result<(candle_core::CudaStorage, candle_core::Shape)> {
        use candle_core::backend::BackendStorage;
        let t = self.take(what)?;
        let (storage, layout) = t.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cuda(s)
                if layout.is_contiguous() && layout.start_offset() == 0 =>
            {
                Ok((s.try_clone(layout)?, layout.shape().clone()))
            }
            _ => candle_core::bail!("{what}: the output is not a whole CUDA tensor"),
        }
    }
}

/// The `cpu_fwd` and `cuda_fwd` of a custom operation whose result was computed beforehand, with
/// tensors, into its [`Computed`] field `$field`: `computed_forward!(N, field, "name")` inside
/// an `impl CustomOpN` (N = 1, 2 or 3) hands that result over, `"name"` naming the operation in
/// errors.
macro_rules! computed_forward {
    (1, $field:ident, $what:literal) => {
        fn cpu_fwd(
            &self,
            _: &candle_core::CpuStorage,
            _: &candle_core::Layout,
        ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
            self.$field.cpu($what)
        }

        #[cfg(feature = "cuda")]
        fn cuda_fwd(
            &self,
            _: &candle_core::CudaStorage,
            _: &candle_core::Layout,
        ) -> candle_core::Result<(candle_core::CudaStorage, candle_core::Shape)> {
            self.$field.cuda($what)
        }
    };
    (2, $field:ident, $what:literal) => {
        fn cpu_fwd(
            &self,
            _: &candle_core::CpuStorage,
            _: &candle_core::Layout,
            _: &candle_core::CpuStorage,
            _: &candle_core::Layout,
        ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
            self.$field.cpu($what)
        }

        #[cfg(feature = "cuda")]
        fn cuda_fwd(
            &self,
            _: &candle_core::CudaStorage,
            _: &candle_core::Layout,
            _: &candle_core::CudaStorage,
            _: &candle_core::Layout,
        ) -> candle_core::Result<(candle_core::CudaStorage, candle_core::Shape)> {
            self.$field.cuda($what)
        }
    };
    (3, $field:ident, $what:literal) => {
        fn cpu_fwd(
            &self,
            _: &candle_core::CpuStorage,
            _: &candle_core::Layout,
            _: &candle_core::CpuStorage,
            _: &candle_core::Layout,
            _: &candle_core::CpuStorage,
            _: &candle_core::Layout,
        ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
            self.$field.cpu($what)
        }

        #[cfg(feature = "cuda")]
        fn cuda_fwd(
            &self,
            _: &candle_core::CudaStorage,
            _: &candle_core::Layout,
            _: &candle_core::CudaStorage,
            _: &candle_core::Layout,
            _: &candle_core::CudaStorage,
            _: &candle_core::Layout,
        ) -> candle_core::Result<(candle_core::CudaStorage, candle_core::Shape)> {
            self.$field.cuda($what)
        }
    };
}
pub(crate) use computed_forward;

/// Whether any of `tensors` is tracked for gradients (then the differentiable forms run).
pub fn tracked(tensors: &[&Tensor]) -> bool {
    tensors.iter().any(|t| t.track_op())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let values: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// Central finite differences of `Σ f(x)·w` against the gradient autograd gives.
    fn check_gradient(f: impl Fn(&Tensor) -> Tensor, x: &Tensor, w: &Tensor) {
        let var = Var::from_tensor(x).unwrap();
        let loss = (f(var.as_tensor()) * w).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let got: Vec<f64> = grads
            .get(var.as_tensor())
            .expect("the gradient reached the input")
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let flat: Vec<f64> = x.flatten_all().unwrap().to_vec1().unwrap();
        let h = 1e-6;
        for (k, g) in got.iter().enumerate() {
            let nudged = |delta: f64| {
                let mut v = flat.clone();
                v[k] += delta;
                let t = Tensor::from_vec(v, x.dims(), &Device::Cpu).unwrap();
                (f(&t) * w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            let numeric = (nudged(h) - nudged(-h)) / (2.0 * h);
            assert!((numeric - g).abs() < 1e-6, "d/dx[{k}]: {g} vs {numeric}");
        }
    }

    #[test]
    fn the_forms_equal_candles_fused_operations() {
        let x = random(&[3, 5, 16], 1).to_dtype(DType::F32).unwrap();
        let scale = random(&[16], 2).to_dtype(DType::F32).unwrap();
        let fused = candle_nn::ops::rms_norm(&x, &scale, 1e-6).unwrap();
        let ours = rms_norm(&x, &scale, 1e-6).unwrap();
        let diff = max_diff(
            &fused.to_dtype(DType::F64).unwrap(),
            &ours.to_dtype(DType::F64).unwrap(),
        );
        assert!(diff < 1e-5, "rms norm differs by {diff}");
        let fused = candle_nn::ops::softmax_last_dim(&x).unwrap();
        let ours = softmax_last_dim(&x).unwrap();
        let diff = max_diff(
            &fused.to_dtype(DType::F64).unwrap(),
            &ours.to_dtype(DType::F64).unwrap(),
        );
        assert!(diff < 1e-6, "softmax differs by {diff}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = random(&[2, 3, 8], 3);
        let w = random(&[2, 3, 8], 4);
        let scale = random(&[8], 5);
        check_gradient(|x| rms_norm(x, &scale, 1e-6).unwrap(), &x, &w);
        check_gradient(|x| softmax_last_dim(x).unwrap(), &x, &w);
        // A masked entry (−∞, as the causal bias makes) gets no gradient and no NaN.
        let mut masked: Vec<f64> = x.flatten_all().unwrap().to_vec1().unwrap();
        masked[1] = f64::NEG_INFINITY;
        let masked = Tensor::from_vec(masked, x.dims(), &Device::Cpu).unwrap();
        let var = Var::from_tensor(&masked).unwrap();
        let loss = (softmax_last_dim(var.as_tensor()).unwrap() * &w)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let grad: Vec<f64> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(grad[1], 0.0);
        assert!(grad.iter().all(|g| g.is_finite()));
    }

    #[test]
    fn the_scale_gets_its_gradient_too() {
        let x = random(&[4, 8], 6);
        let w = random(&[4, 8], 7);
        let scale = random(&[8], 8);
        check_gradient(|s| rms_norm(&x, s, 1e-6).unwrap(), &scale, &w);
    }

    #[test]
    fn a_frozen_linear_passes_the_input_gradient_and_makes_no_weight_gradient() {
        let x = random(&[2, 3, 8], 9);
        let weight = random(&[5, 8], 10);
        let w = random(&[2, 3, 5], 11);
        check_gradient(|x| frozen_linear(x, &weight).unwrap(), &x, &w);
        let var = Var::from_tensor(&x).unwrap();
        let y = frozen_linear(var.as_tensor(), &weight).unwrap();
        let plain = var
            .as_tensor()
            .broadcast_matmul(&weight.t().unwrap())
            .unwrap();
        assert_eq!(max_diff(&y, &plain), 0.0, "the same product");
        // After the backward pass the store keeps the gradients of leaves: x's and the loss
        // weights w's; a plain product (what this replaces) also computed one for the weight
        // (its transpose).
        let grads = (y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(var.as_tensor()).is_some() && grads.get(&w).is_some());
        assert_eq!(
            grads.get_ids().count(),
            2,
            "a gradient for the frozen weight"
        );
        let grads = (plain * &w).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(grads.get_ids().count(), 3);
    }
}
