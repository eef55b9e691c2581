//! Training support (issue 17, in progress; the design is in `gpu/TRAINING-PLAN.md`).
//!
//! [`job`] is one whole run (rows and a snapshot in, an adapter out), built from the rest:
//! [`export`], a snapshot with an adapter merged in; [`data`], a training row as tokens with the response marked by the chat template;
//! [`lora`], a trainable adapter beside the frozen model (PEFT's initialisation and format); [`loss`], the DFT and cross-entropy loss over a chunked LM head; [`optim`], AdamW,
//! clipping and the warm-up + cosine schedule; [`trainer`], the loop (accumulation, clipping,
//! schedule, seeded order); [`checkpoint`], its state saved atomically and resumed; [`metrics`], the per-step log and loss curve; and [`ops`], differentiable forms of the fused operations where candle's autograd stops
//! (its fused RMS norm and softmax have no backward). The model's layers switch to them when
//! an input is tracked for gradients, so inference runs exactly as before.

pub mod checkpoint;
pub mod data;
pub mod export;
pub mod job;
pub mod lora;
pub mod loss;
pub mod metrics;
pub mod ops;
pub mod optim;
pub mod trainer;
