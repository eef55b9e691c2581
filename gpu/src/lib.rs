//! # lamar-gpu
//!
//! The model side of lamar: the Qwen3.5 text model (Gated DeltaNet + gated attention) in
//! Candle ([`qwen35`]), on the CPU (f32/bf16) and, with `--features cuda`, on NVIDIA GPUs.
//!
//! **Status: the first slices of the issue "Qwen3.5 in Candle".** Loading a local snapshot
//! and the full forward pass with caches work and match transformers 5.17 (logits within 1e-4
//! in f32 on a tiny random model, in one call and token by token; greedy decoding token for
//! token: `tests/qwen35_parity.rs`). The DeltaNet runs in chunks for prefill and as a
//! recurrence for decoding, and the two forms agree (unit test). Left-padded batches give each
//! sequence its own logits (`Qwen35Model::forward_masked`), and `Qwen35Model::generate` decodes
//! a batch (static batching) with greedy or temperature/top-p sampling ([`sampling`]: no
//! vocabulary sort, Gumbel-max draws) and per-token log-probabilities. PEFT LoRA adapters
//! ([`lora`], rsLoRA included) apply merged or unmerged and match PEFT. Not yet: continuous
//! batching, the tokenizer and chat template, `lamar infer`, the CUDA build and its
//! measurements. Until then `lamar synth --simulate-models` stands in for model outputs so the
//! rest of the pipeline can be exercised.

pub mod chat;
pub mod infer;
pub mod lora;
pub mod qwen35;
pub mod sampling;
pub mod tokenizer;
