//! Pseudo-labels from unlabeled notes (LAMAR's Model 3, `lamar-spec.md` §8), every step but
//! the model's own inference:
//!
//! 1. [`extract`]: the unlabeled discharge summaries of MIMIC-III's `NOTEEVENTS.csv`, streamed;
//! 2. [`embeddings`]: embedding files (safetensors with ids), the notes to embed, and lamar's
//!    dependency-free hashed embedder (Qwen3-Embedding lives in `lamar_model::embed`);
//! 3. [`retrieve`]: each MedDec document's nearest unlabeled notes, each note to one document,
//!    exactly as the reference assigns them (on the CPU; the wgpu path is `lamar_model::retrieve`), and
//!    [`neighbours`] reads the result back for the viewer; [`partial`] keeps a killed embedding
//!    run's work;
//! 4. `lamar infer` tags the chosen notes, then [`explore`] relates the model's entropy to its
//!    quality on validation, and [`select`] mixes the most confident notes into the training
//!    rows.
//!
//! Each module lists the reference's bugs it fixes.

pub mod embeddings;
pub mod explore;
pub mod extract;
pub mod neighbours;
pub mod partial;
pub mod retrieve;
pub mod select;
