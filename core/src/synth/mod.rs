//! Synthetic corpus (placeholder while the generator is written).
