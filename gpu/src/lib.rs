//! # lamar-gpu
//!
//! Home of the model side of lamar: the Qwen3.5 text model (Gated DeltaNet + gated attention) in
//! Candle with CUDA, LoRA adapters, Dynamic Fine-Tuning, GRPO, and wgpu kernels for
//! nearest-neighbour retrieval.
//!
//! **Status: empty.** Nothing here works yet; the work is tracked in the issue "Qwen3.5 in
//! Candle". Until it lands, `lamar synth --simulate-models` stands in for model outputs so the
//! rest of the pipeline (decoding, ensembling, scoring, viewing) can be exercised.
