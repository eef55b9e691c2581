//! # lamar-model
//!
//! The model side of lamar: the Qwen3.5 text model (Gated DeltaNet + gated attention) in
//! Candle ([`qwen35`]), on the CPU (f32/bf16) and, with `--features cuda`, on NVIDIA GPUs.
//!
//! What is here:
//! * [`qwen35`]: the text model, one concept a file: [`qwen35::config`] (a Hugging Face
//!   `config.json`), the layers (zero-centred RMSNorm, SwiGLU MLP, gated attention with partial
//!   RoPE, Gated DeltaNet; private module `qwen35::layers`), [`qwen35::delta_rule`] (the gated
//!   delta rule, chunked and recurrent), [`qwen35::model`] (the stack and its LM head: a
//!   cache-free [`qwen35::Qwen35Model::forward_sequence`] over whole sequences, and forward
//!   calls that continue from a decoding [`qwen35::Cache`]), [`qwen35::cache`] (keys/values and
//!   DeltaNet state; rows joined, admitted, trimmed, dropped), [`qwen35::step`] (the context of
//!   one call and the fused-kernel switches), [`qwen35::generate`] (static batching),
//!   [`qwen35::continuous`] (continuous batching), [`qwen35::graph`] (decoding steps captured
//!   as CUDA graphs), [`qwen35::stopwatch`] (stage profile), [`qwen35::random`] (random
//!   snapshots for tests and demos).
//!   Parity: f32 logits within 1e-4 of transformers 5.17 on a tiny random model (cached and
//!   cache-free), greedy decoding token for token (`tests/qwen35_parity.rs`); bf16 on an H100
//!   against a random full-size 4B model in BENCHMARKS.md.
//! * [`lora`]: PEFT adapters (rsLoRA too), merged at load or applied unmerged; projections that
//!   read the same input are stacked into one matrix product when no adapter stays unmerged.
//! * [`sampling`]: greedy and temperature/top-p without sorting the vocabulary (bisection for
//!   the nucleus, Gumbel-max draws, made on the device when it is a GPU), per-token
//!   log-probabilities.
//! * [`tokenizer`], [`chat`]: the snapshot's `tokenizer.json` and chat template (rendered as
//!   transformers renders it; golden test `tests/chat_golden.rs`).
//! * [`infer`]: the tagging step (`lamar infer`): prompt → chat → tokens → continuous batching
//!   → decoded text and its "entropy", handed over document by document.
//! * [`kernels`]: lamar's own CUDA kernels: for decoding (DeltaNet step, attention prologue and
//!   split-key attention, residual add + RMSNorm, SwiGLU, few-row matrix-vector products,
//!   greedy picks on the device) and for prefill (DeltaNet convolution and gated norm, the
//!   chunked delta rule's state-free part and its pass over chunks).
//! * [`device`]: opening the CUDA device as lamar uses it (one stream, no event tracking, a
//!   memory pool that keeps what it frees).
//!
//! Dependencies point one way: `config` ← `layers` ← `model` ← `generate`/`graph` ←
//! `continuous` ← `infer`; `cache` and `step` are read by the layers and written by the model.
//!
//! * [`train`]: LoRA + DFT fine-tuning on the CPU and CUDA (gradients through every operation,
//!   PEFT-format adapters, checkpoints, merging); loss and gradients equal PyTorch + PEFT's
//!   (`tests/lora_training.rs`).
//!
//! * [`embed`]: Qwen3-Embedding (candle-transformers' Qwen3, last-token pooling, L2) for the
//!   pseudo-label retrieval; equal to transformers on a tiny random snapshot
//!   (`tests/qwen3_embedding.rs`).
//! * [`retrieve`]: nearest-neighbour retrieval on any GPU through wgpu (Vulkan, Metal, DX12):
//!   a tiled similarity shader and a bitonic per-query top-k; the CPU path's neighbours, ties
//!   included, on property-generated matrices (`tests/gpu_retrieval.rs`, Mesa's lavapipe in CI).
//!
//! * [`encoder`]: the encoder baseline: a BERT/RoBERTa token classifier over BIO labels,
//!   trained with differentiable Candle operations and tagging on candle-transformers' models;
//!   logits, loss and gradients equal PyTorch's (`tests/encoder_parity.rs`).
//!
//! Not yet: an attention kernel for prefill.

pub mod chat;
pub mod device;
pub mod embed;
pub mod encoder;
pub mod infer;
pub mod kernels;
pub mod lora;
pub mod qwen35;
pub mod retrieve;
pub mod sampling;
pub mod tokenizer;
pub mod train;
