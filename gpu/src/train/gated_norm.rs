//! A DeltaNet layer's gated RMS norm (`round(round(rms(o) · w) · silu(z))` per value head),
//! differentiable, as lamar's CUDA kernels: inference's kernel forward
//! (`kernels::deltanet::gated_norm`) and one backward kernel for both inputs' gradients, in
//! place of about fifteen candle operations each way over the `(T × nv·dv)` outputs. The norm
//! weight is frozen and gets no gradient.

use candle_core::{CustomOp2, Result, Tensor};

/// The gated norm of `o` `(…, nv, dv)` (f32) with the gate `z` `(…, nv·dv)` and the weight
/// `weight` `(dv)` (f32), differentiable in `o` and `z`: `(…, nv·dv)` in `z`'s dtype. `None`
/// where the kernels do not apply (off CUDA, or sizes one launch does not take).
pub fn gated_rms_norm(o: &Tensor, z: &Tensor, weight: &Tensor, eps: f64) -> Result<Option<Tensor>> {
    #[cfg(feature = "cuda")]
    if o.device().is_cuda() && !weight.track_op() {
        let tracked = super::ops::tracked(&[o, z]);
        if tracked && o.dim(candle_core::D::Minus1)? > 1_024 {
            return Ok(None); // wider than the backward kernel's block
        }
        let (o_in, z_in) = (o.detach().contiguous()?, z.detach());
        let Some(out) = crate::kernels::deltanet::gated_norm(&o_in, &z_in, weight, eps)? else {
            return Ok(None);
        };
        if !tracked {
            return Ok(Some(out));
        }
        return o
            .apply_op2(
                z,
                GatedNorm {
                    o: o_in,
                    z: z_in,
                    weight: weight.clone(),
                    eps,
                    out: super::ops::Computed::new(out),
                },
            )
            .map(Some);
    }
    let _ = (o, z, weight, eps);
    Ok(None)
}

/// Passes the kernel's output through; its backward is the backward kernel.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct GatedNorm {
    o: Tensor,
    z: Tensor,
    weight: Tensor,
    eps: f64,
    out: super::ops::Computed,
}

impl CustomOp2 for GatedNorm {
    fn name(&self) -> &'static str {
        "gated-rms-norm"
    }

    super::ops::computed_forward!(2, out, "gated_rms_norm");

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        #[cfg(feature = "cuda")]
        {
            let grad = grad.to_dtype(self.z.dtype())?;
            let (d_o, d_z) = crate::kernels::deltanet::gated_norm_backward(
                &self.o,
                &self.z,
                &self.weight,
                &grad,
                self.eps,
            )?
            .ok_or_else(|| {
                candle_core::Error::Msg("gated_rms_norm: the backward kernel refused".into())
            })?;
            Ok((Some(d_o), Some(d_z)))
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = grad;
            candle_core::bail!("gated_rms_norm: made only on CUDA")
        }
    }
}
