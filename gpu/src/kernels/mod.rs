//! lamar's own CUDA kernels, for the steps where candle's general operations cost more in
//! launches than in arithmetic (decoding one token at a time is bound by kernel launches: see
//! BENCHMARKS.md). Each `NAME.cu` here is compiled to PTX by `build.rs` (with `--features cuda`
//! only) and launched by the Rust module of the same name; `common.cuh` holds what they share.
//! The candle operations they replace stay the reference (and the CPU path): the GPU bench
//! compares both (`Qwen35Model::set_fused_kernels`). Every kernel has an f32 and a bf16 version
//! and rounds where the candle path rounds.
//!
//! * `deltanet`: one decoding step of a Gated DeltaNet layer (convolution, norms, gates,
//!   delta rule on the state in place, gated norm): three kernels for about forty operations;
//!   and a prefill's convolution and gated norm.
//! * `deltanet_chunks`: a DeltaNet layer's prefill in two kernels: the chunked rule's
//!   state-free part straight from the convolution's output (about sixty operations), and the
//!   pass over chunks that carries the state (about eight operations per chunk); for training,
//!   the same pass keeping what its backward needs, and the adjoint pass. Both passes run on
//!   tensor cores (`deltanet_chunks_tc.cu`, 3xTF32: float's precision) where the sizes allow;
//!   `async_copy.cuh` holds their asynchronous tile copies.
//! * `deltanet_parts`: training's state-free part of the chunked rule, forward (from the
//!   normed queries and keys; the products shared with `deltanet_chunks`) and backward: one
//!   kernel each for about sixty and seventy operations.
//! * `flash_attention`: causal attention over a whole sequence for training, forward and
//!   backward (FlashAttention-2's tiling on the tensor cores, bf16, head size 256): no
//!   `[T × T]` matrix, three kernels for the blocked candle operations of `train::attention`.
//! * `attention`: the start of a full-attention decoding step (query/key norms, partial RoPE,
//!   the new key and value written into the cache): one kernel for about thirty operations;
//!   and split-key (flash-decoding) attention with the output gate: two for about ten.
//! * `norm`: residual addition and zero-centred RMSNorm: one kernel for four operations (rows of
//!   up to 8k values held in registers, every load issued before the sum).
//! * `mlp`: the MLP's `silu(gate) · up`: one kernel for two operations (prefill; decoding
//!   computes it in the gate/up product's kernel, `gemv::gemv_swiglu`).
//! * `gemv`: projections of a few rows (decoding), streaming the weights faster than cuBLAS
//!   does at one row; one variant finishes the MLP's gate/up product with its activation.
//! * `lora`: an unmerged LoRA adapter's delta added to a projection of a few rows: one kernel
//!   for six operations (GRPO's rollouts decode with the policy's adapter inside CUDA graphs).
//! * `adamw`: the optimiser step of training: the global gradient norm summed on the device
//!   (one transfer instead of one per tensor), and AdamW's update of a tensor in place in one
//!   kernel instead of about a dozen operations.
//! * `sample`: greedy decoding's token and log-probability: two kernels for about a dozen; and
//!   inside a greedy CUDA graph, the choice fed to the next step on the device.

#[cfg(feature = "cuda")]
pub mod adamw;
#[cfg(feature = "cuda")]
pub mod attention;
#[cfg(feature = "cuda")]
pub mod deltanet;
#[cfg(feature = "cuda")]
pub mod deltanet_chunks;
#[cfg(feature = "cuda")]
pub mod deltanet_parts;
#[cfg(feature = "cuda")]
pub mod flash_attention;
#[cfg(feature = "cuda")]
pub mod gemv;
#[cfg(feature = "cuda")]
pub(crate) mod launch;
#[cfg(feature = "cuda")]
pub mod lora;
#[cfg(feature = "cuda")]
pub mod mlp;
#[cfg(feature = "cuda")]
pub mod norm;
#[cfg(feature = "cuda")]
pub mod sample;
