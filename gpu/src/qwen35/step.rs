//! The context of one forward call that every layer reads (`Step`: rotary angles, attention
//! bias, padding mask, the CUDA graph's counters, the stopwatch), and the switches for lamar's
//! fused CUDA kernels ([`FusedKernels`]).

use super::stopwatch::Stopwatch;
use candle_core::{Result, Tensor};
use std::sync::Arc;

/// What every layer needs for one forward call: rotary angles per token, the attention bias
/// (causal and padding), the padding mask of the new tokens.
pub(crate) struct Step {
    /// Each token's position `(B, T)`, f32.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) positions: Tensor,
    /// The model's RoPE inverse frequencies (`rotary_dim / 2`), f32.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) inv_freq: Tensor,
    /// `(B, 1, T, rotary_dim)`.
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
    /// `(B, 1, T, S)`: 0 where a query may look, −∞ (future) or −1e30 (padding) elsewhere;
    /// with `causal_blocks`, `(B, 1, 1, S)` without the causal part.
    pub(crate) bias: Tensor,
    /// Training passes (no cache, no padding): attention applies causality itself, a block of
    /// queries at a time ([`crate::train::attention`]), and `bias` holds no `[T × S]` part.
    pub(crate) causal_blocks: bool,
    /// `(B, T)` 1 for real tokens, 0 for padding; `None` when there is no padding.
    pub(crate) mask: Option<Tensor>,
    /// In a CUDA graph's capture ([`super::graph`]): the `(2)` u32 buffer `[column, length]`
    /// the replays upload before each step; the attention layers read the key/value column and
    /// length from it (and `bias` is the graph's `(B, 1, 1, capacity)` buffer) instead of the
    /// cache's host-side length, which a capture leaves unchanged.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) graph: Option<Tensor>,
    /// Which of lamar's fused CUDA kernels layers may use ([`Qwen35Model::set_fused_kernels`](super::Qwen35Model::set_fused_kernels)).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fused: FusedKernels,
    /// Times stages when profiling ([`Qwen35Model::set_stopwatch`](super::Qwen35Model::set_stopwatch); never inside a graph
    /// capture, where waiting for the device is not allowed).
    pub(crate) stopwatch: Option<Arc<Stopwatch>>,
    /// Key/value capacity the cache reserved (tokens), for attention buffers that must grow;
    /// 0 without a cache.
    pub(crate) reserve: usize,
    /// A trainable adapter whose deltas every projection adds (training), if any.
    pub(crate) lora: Option<Arc<crate::train::lora::TrainableLora>>,
}

impl Step {
    /// Ends stage `name` on the stopwatch, if there is one.
    pub(crate) fn lap(&self, name: &'static str) -> Result<()> {
        Stopwatch::lap_on(self.stopwatch.as_deref(), name)
    }

    /// `x` with a backward mark ([`Stopwatch::mark_backward`]) when profiling a tracked pass:
    /// the backward work from the next mark back to here is charged to `name`.
    pub(crate) fn mark_backward(&self, x: &Tensor, name: &'static str) -> Result<Tensor> {
        Stopwatch::mark_backward(self.stopwatch.as_ref(), x, name)
    }
}

/// Which of lamar's fused CUDA kernels ([`crate::kernels`]) the model uses on a CUDA device
/// (all by default). Off, a step runs as candle operations, as on the CPU: the reference the
/// GPU bench compares with. Without the `cuda` feature there are none and this changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FusedKernels {
    /// A DeltaNet layer's decoding step, and its convolution and gated norm in prefill
    /// (`kernels::deltanet`).
    pub deltanet: bool,
    /// The start of a full-attention decoding step (`kernels::attention`).
    pub attention: bool,
    /// Residual addition + RMSNorm (`kernels::norm`).
    pub norm: bool,
    /// The MLP's activation (`kernels::mlp`, forward and backward in training passes through
    /// `train::swiglu`; when decoding with `gemv`, computed by the gate/up product's kernel,
    /// `kernels::gemv::gemv_swiglu`).
    pub mlp: bool,
    /// Projections of up to 8 rows (decoding; `kernels::gemv`).
    pub gemv: bool,
    /// A DeltaNet layer's prefill: the chunked rule's state-free part and its pass over
    /// chunks (`kernels::deltanet_chunks`).
    pub chunks: bool,
    /// Causal attention over a whole sequence without a `[T × S]` matrix
    /// (`kernels::flash_attention`): a training pass's, forward and backward, and a prompt's
    /// prefill from an empty cache without padding.
    pub flash: bool,
    /// A DeltaNet layer's convolution and gated norm in a training pass, forward and backward
    /// (`train::conv`, `train::gated_norm`; `deltanet` covers them in untracked passes).
    pub training_deltanet: bool,
}

impl FusedKernels {
    /// Every fused kernel.
    pub const ALL: FusedKernels = FusedKernels {
        deltanet: true,
        attention: true,
        norm: true,
        mlp: true,
        gemv: true,
        chunks: true,
        flash: true,
        training_deltanet: true,
    };
    /// None: candle operations only.
    pub const NONE: FusedKernels = FusedKernels {
        deltanet: false,
        attention: false,
        norm: false,
        mlp: false,
        gemv: false,
        chunks: false,
        flash: false,
        training_deltanet: false,
    };

    /// Parses `all`, `none` or a comma-separated list of `all`, `deltanet`, `attention`,
    /// `norm`, `mlp`, `gemv`, `chunks`, `flash`, `training-deltanet`.
    pub fn parse(text: &str) -> std::result::Result<FusedKernels, String> {
        if text == "none" {
            return Ok(FusedKernels::NONE);
        }
        let mut fused = FusedKernels::NONE;
        for name in text.split(',') {
            match name.trim() {
                "all" => fused = FusedKernels::ALL,
                "training-deltanet" => fused.training_deltanet = true,
                "deltanet" => fused.deltanet = true,
                "attention" => fused.attention = true,
                "norm" => fused.norm = true,
                "mlp" => fused.mlp = true,
                "gemv" => fused.gemv = true,
                "chunks" => fused.chunks = true,
                "flash" => fused.flash = true,
                other => {
                    return Err(format!(
                        "unknown fused kernel {other:?} (all, none, or a list of all, deltanet, \
                         attention, norm, mlp, gemv, chunks, flash, training-deltanet)"
                    ));
                }
            }
        }
        Ok(fused)
    }
}

#[cfg(test)]
mod tests {
    use super::FusedKernels;

    #[test]
    fn kernel_lists_parse_with_all_as_an_item() {
        assert_eq!(FusedKernels::parse("all"), Ok(FusedKernels::ALL));
        assert_eq!(FusedKernels::parse("none"), Ok(FusedKernels::NONE));
        assert_eq!(FusedKernels::parse("flash, all"), Ok(FusedKernels::ALL));
        let some = FusedKernels::parse("chunks,flash").unwrap();
        assert!(some.chunks && some.flash && !some.deltanet && !some.training_deltanet);
        let training = FusedKernels::parse("training-deltanet").unwrap();
        assert!(training.training_deltanet && !training.deltanet && !training.chunks);
        let error = FusedKernels::parse("chunks,bogus").unwrap_err();
        assert!(error.contains("\"bogus\""), "{error}");
    }
}
