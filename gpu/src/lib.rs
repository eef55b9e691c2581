//! # lamar-gpu
//!
//! The model side of lamar: the Qwen3.5 text model (Gated DeltaNet + gated attention) in
//! Candle ([`qwen35`]), on the CPU (f32/bf16) and, with `--features cuda`, on NVIDIA GPUs.
//!
//! What is here:
//! * [`qwen35`]: the text model (config, safetensors loading, zero-centred RMSNorm, gated
//!   attention with partial RoPE, Gated DeltaNet in chunked form for prefill and recurrent form
//!   for decoding, tied head), key/value buffers that grow in place, left-padded batches,
//!   [`qwen35::model::Qwen35Model::generate_each`] (row-group prefill, per-prompt limits, stop
//!   tokens, batches that shrink as sequences finish), continuous batching
//!   ([`qwen35::continuous`]: a finished sequence's slot takes the next prompt at once), and
//!   random snapshots for tests and demos.
//!   Parity: f32 logits within 1e-4 of transformers 5.17 on a tiny random model, greedy decoding
//!   token for token (`tests/qwen35_parity.rs`); bf16 on an H100 against a random full-size
//!   4B model in BENCHMARKS.md.
//! * [`lora`]: PEFT adapters (rsLoRA too), merged at load or applied unmerged; projections that
//!   read the same input are stacked into one matrix product when no adapter stays unmerged.
//! * [`sampling`]: greedy and temperature/top-p without sorting the vocabulary (bisection for
//!   the nucleus, Gumbel-max draws, made on the device when it is a GPU), per-token
//!   log-probabilities.
//! * [`tokenizer`], [`chat`]: the snapshot's `tokenizer.json` and chat template (rendered as
//!   transformers renders it; golden test `tests/chat_golden.rs`).
//! * [`infer`]: the tagging step (`lamar infer`): prompt → chat → tokens → continuous batching
//!   → decoded text and its "entropy", handed over document by document.
//!
//! * [`kernels`]: lamar's own CUDA kernels for decoding (DeltaNet step, attention prologue and
//!   split-key attention, residual add + RMSNorm, SwiGLU, few-row matrix-vector products), and
//!   [`qwen35::graph`]: each decoding step captured once as a CUDA graph and replayed.
//! * [`device`]: opening the CUDA device as lamar uses it (one stream, no event tracking).
//!
//! Not yet: a fused chunked-DeltaNet kernel for prefill, DFT and GRPO training.

pub mod chat;
pub mod device;
pub mod infer;
pub mod kernels;
pub mod lora;
pub mod qwen35;
pub mod sampling;
pub mod tokenizer;
