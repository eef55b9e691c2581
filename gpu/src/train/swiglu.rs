//! The MLP's activation `silu(gate) · up`, differentiable, as lamar's CUDA kernels: inference's
//! kernel forward (`kernels::mlp::silu_mul`) and one backward kernel for both inputs'
//! gradients, in place of candle's two operations forward and about eight backward over the
//! `(T × intermediate)` tensors.

use candle_core::{CustomOp2, Result, Tensor};

/// `silu(gate) · up` on CUDA, differentiable in both when either is tracked; `None` off CUDA
/// (the caller runs the candle operations).
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Option<Tensor>> {
    #[cfg(feature = "cuda")]
    if gate.device().is_cuda() {
        let (gate_in, up_in) = (gate.detach(), up.detach());
        let out = crate::kernels::mlp::silu_mul(&gate_in, &up_in)?;
        if !super::ops::tracked(&[gate, up]) {
            return Ok(Some(out));
        }
        return gate
            .apply_op2(
                up,
                SiluMul {
                    gate: gate_in,
                    up: up_in,
                    out: super::ops::Computed::new(out),
                },
            )
            .map(Some);
    }
    let _ = (gate, up);
    Ok(None)
}

/// Passes the kernel's output through; its backward is the backward kernel.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct SiluMul {
    gate: Tensor,
    up: Tensor,
    out: super::ops::Computed,
}

impl CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul"
    }

    super::ops::computed_forward!(2, out, "silu_mul");

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        #[cfg(feature = "cuda")]
        {
            let (d_gate, d_up) =
                crate::kernels::mlp::silu_mul_backward(&self.gate, &self.up, grad)?;
            Ok((Some(d_gate), Some(d_up)))
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = grad;
            candle_core::bail!("silu_mul: made only on CUDA")
        }
    }
}
