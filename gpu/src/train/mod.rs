//! Training: LoRA fine-tuning of the frozen Qwen3.5 with the DFT (or cross-entropy) loss, on
//! the CPU and on CUDA.
//!
//! [`job`] is one whole run (rows and a snapshot in, an adapter out), built from the rest:
//! * [`data`]: a training row as tokens, the response marked by the chat template;
//! * [`lora`]: a trainable adapter beside the frozen model (PEFT's initialisation and format),
//!   its delta in training passes one operation with a written backward ([`lora_delta`]);
//! * [`ops`]: differentiable forms of the fused operations where candle's autograd stops (its
//!   fused RMS norm and softmax have no backward), and [`ops::frozen_linear`], a product with a
//!   frozen weight that makes no weight gradient. The model's layers switch to them when an
//!   input is tracked for gradients, so inference runs exactly as before;
//! * [`attention`]: causal attention a block of queries at a time, forward and backward,
//!   without any `[T × T]` matrix (training passes use it for every full-attention layer);
//! * [`carry`]: the chunked delta rule's sequential pass and its adjoint recurrence (CUDA
//!   kernels on the GPU, candle loops elsewhere), then the gradients as batched products;
//! * [`conv`]: a DeltaNet layer's convolution and SiLU as CUDA kernels, forward and backward;
//! * [`gated_norm`]: a DeltaNet layer's gated RMS norm as CUDA kernels, forward and backward;
//! * [`swiglu`]: the MLP's `silu(gate) · up` as CUDA kernels, forward and backward;
//! * [`delta_rule`]: the whole chunked delta rule as one operation with its own backward (the
//!   chunks' state-free part recomputed and differentiated by hand, then the pass's adjoint):
//!   DeltaNet layers use it in training;
//! * [`deltanet_core`]: a DeltaNet layer from its convolution's output to the delta rule's
//!   outputs (splits, L2 norms, gates, layout, delta rule) as one operation with its backward
//!   written out: a whole sequence's training pass uses it;
//! * [`loss`]: the DFT and cross-entropy loss over a chunked LM head;
//! * [`gradients`]: one sequence's loss and adapter gradients, with every activation kept or
//!   with each layer recomputed in the backward pass (activation checkpointing);
//! * [`shared_prompt`]: the policy gradients of several completions of one prompt, with the
//!   prompt's pass done once (GRPO's update);
//! * [`optim`]: AdamW, clipping and the warm-up + cosine schedule;
//! * [`trainer`]: the loop (accumulation, clipping, schedule, seeded order);
//! * [`checkpoint`]: its state, saved atomically and resumed;
//! * [`metrics`]: the per-step log and the loss curve;
//! * [`export`]: a snapshot with an adapter merged in;
//! * [`grpo`]: GRPO (Model 2): rollouts, the policy update, the logs and the whole run
//!   ([`grpo::job::GrpoJob`], `lamar train grpo`).
//!
//! Speed at full size is training part 2 (issue 18): recomputation per layer (the kept
//! forward pass frozen, with every inference kernel), the delta rule (its state-free part and
//! its sequential passes, on tensor cores), flash attention, the DeltaNet convolution and gated
//! norm, the MLP's SwiGLU and the RMS norm's backward as CUDA kernels (tested on a GPU by
//! `kernel_tests`, `gpu/tools/gpu-kernel-tests.sh`), and the adapter's products in bf16 on
//! request ([`lora::AdapterProducts`]). candle's autograd adds every gradient into a zero
//! tensor of its node's size, so the training graph is kept to few nodes: a DeltaNet layer's
//! core ([`deltanet_core`]), each projection with its adapter
//! ([`lora_delta::tracked_projection`]) and the layer-output surrogate ([`loss::surrogate`]) are
//! single operations with written backward passes. BENCHMARKS.md has the full-size
//! measurements; `gpu/tools/gpu-kernel-trace.sh` shows a step's GPU time kernel by kernel.

pub mod attention;
pub mod carry;
pub mod checkpoint;
pub mod conv;
pub mod data;
pub mod delta_rule;
pub mod deltanet_core;
pub mod export;
pub mod gated_norm;
pub mod gradients;
pub mod grpo;
pub mod job;
#[cfg(all(test, feature = "cuda"))]
mod kernel_tests;
pub mod lora;
pub mod lora_delta;
pub mod loss;
pub mod metrics;
pub mod ops;
pub mod optim;
pub mod shared_prompt;
pub mod swiglu;
pub mod trainer;
