//! The model's normalisations: Qwen3.5's zero-centred RMSNorm (with the residual addition
//! before it fused on CUDA), and the L2 norm of DeltaNet queries and keys written as an RMS
//! norm so that one fused candle kernel computes it.

use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

/// `x / sqrt(mean(x²) + eps) · scale` over the last dimension, computed in f32 (one fused
/// kernel, or its differentiable form when a gradient is tracked) and returned in f32.
pub(crate) fn rms_scaled(x: &Tensor, scale: &Tensor, eps: f64) -> Result<Tensor> {
    let x = x.to_dtype(DType::F32)?;
    if crate::train::ops::tracked(&[&x, scale]) {
        return crate::train::ops::rms_norm(&x, scale, eps);
    }
    candle_nn::ops::rms_norm(&x.contiguous()?, scale, eps as f32)
}

/// `x / ‖x‖₂` (with transformers' `1e-6` inside the root) times `factor`, over the last
/// dimension, in f32: the fused RMS norm does it, since
/// `x / sqrt(Σx² + ε) = x / sqrt(mean(x²) + ε/d) / √d`. `scale` is [`l2_scale`]`(d, factor)`.
pub(crate) fn l2_normalised(x: &Tensor, scale: &Tensor) -> Result<Tensor> {
    let eps = l2_eps(x.dim(D::Minus1)?);
    if crate::train::ops::tracked(&[x, scale]) {
        return crate::train::ops::rms_norm(x, scale, eps);
    }
    candle_nn::ops::rms_norm(&x.contiguous()?, scale, eps as f32)
}

/// The RMS norm's epsilon that makes [`l2_normalised`] over `d` values transformers' L2 norm
/// (`1e-6` inside the root of the sum).
pub(crate) fn l2_eps(d: usize) -> f64 {
    1e-6 / d as f64
}

/// The RMS-norm weight that makes [`l2_normalised`] an L2 norm times `factor` over `d` values.
pub(crate) fn l2_scale(d: usize, factor: f64, device: &Device) -> Result<Tensor> {
    Tensor::full((factor / (d as f64).sqrt()) as f32, d, device)
}

/// Zero-centred RMSNorm: `rms(x) · (1 + w)` in f32, cast back (Qwen3.5's stored weights are
/// offsets from 1).
pub(crate) struct CenteredRmsNorm {
    /// `1 + w`, f32.
    pub(crate) scale: Tensor,
    pub(crate) eps: f64,
}

impl CenteredRmsNorm {
    /// Reads `weight` (`size` values) under `vb`.
    pub(crate) fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        let w = vb.get(size, "weight")?.to_dtype(DType::F32)?;
        Ok(CenteredRmsNorm {
            scale: (w + 1.0)?,
            eps,
        })
    }

    /// The norm of `x` over its last dimension, in `x`'s dtype.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        rms_scaled(x, &self.scale, self.eps)?.to_dtype(x.dtype())
    }

    /// `residual ← residual + delta` (when there is one), then the norm of the result; with
    /// `fused` on a CUDA device, in one kernel that updates `residual` in place (it must be a
    /// buffer of the caller's alone).
    pub(crate) fn add_forward(
        &self,
        residual: &mut Tensor,
        delta: Option<Tensor>,
        fused: bool,
    ) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if fused && residual.device().is_cuda() && residual.is_contiguous() {
            return crate::kernels::norm::add_rms_norm(
                residual,
                delta.as_ref(),
                &self.scale,
                self.eps,
            );
        }
        let _ = fused;
        if let Some(delta) = delta {
            *residual = (&*residual + delta)?;
        }
        self.forward(residual)
    }
}
