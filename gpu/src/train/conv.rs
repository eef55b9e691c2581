//! A DeltaNet layer's causal depthwise convolution and SiLU, differentiable, as lamar's CUDA
//! kernels: the forward pass is inference's prefill kernel (`kernels::deltanet::conv_prefill`),
//! the backward pass one kernel that recomputes each pre-activation and sums the input's
//! gradient over the taps that read it. It replaces about a dozen candle operations over the
//! `(T × channels)` input each way, whose intermediates autograd kept until the backward pass;
//! this keeps only the input.
//!
//! The convolution weight is frozen (no adapter reaches it) and gets no gradient; a tracked
//! history (a shared prompt's carried convolution inputs) is left to the candle operations.

use candle_core::{CustomOp1, Result, Tensor};

/// `silu(conv(x))` for `x` `(B, T, channels)` after the `kernel − 1` inputs `history`, with
/// `weight` `(channels, kernel)`, differentiable in `x`; `None` where the kernels do not apply
/// (off CUDA, or a tracked history), and the caller runs the candle operations.
pub fn causal_conv_silu(x: &Tensor, history: &Tensor, weight: &Tensor) -> Result<Option<Tensor>> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() && !history.track_op() {
        let input = x.detach();
        let out = crate::kernels::deltanet::conv_prefill(&input, history, weight)?;
        if !x.track_op() {
            return Ok(Some(out));
        }
        return x
            .apply_op1(ConvSilu {
                input,
                history: history.detach(),
                weight: weight.detach(),
                out: super::ops::Computed::new(out),
            })
            .map(Some);
    }
    let _ = (x, history, weight);
    Ok(None)
}

/// Passes the kernel's output through; its backward is the backward kernel.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct ConvSilu {
    input: Tensor,
    history: Tensor,
    weight: Tensor,
    out: super::ops::Computed,
}

impl CustomOp1 for ConvSilu {
    fn name(&self) -> &'static str {
        "causal-conv-silu"
    }

    super::ops::computed_forward!(1, out, "causal_conv_silu");

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        #[cfg(feature = "cuda")]
        {
            let grad = grad.to_dtype(self.input.dtype())?;
            crate::kernels::deltanet::conv_prefill_backward(
                &self.input,
                &self.history,
                &self.weight,
                &grad,
            )
            .map(Some)
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = grad;
            candle_core::bail!("causal_conv_silu: made only on CUDA")
        }
    }
}
