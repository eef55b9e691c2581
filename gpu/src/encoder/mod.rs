//! The encoder baseline of the shared task (lamar-spec §9): a BERT/RoBERTa token classifier
//! over BIO labels of the nine categories ([`lamar_core::bio`]), fine-tuned from a local
//! checkpoint, whose spans join the ensemble as one more voice.
//!
//! * [`config`]: the checkpoint's `config.json` (BERT, RoBERTa, XLM-R).
//! * [`model`]: the differentiable classifier lamar trains (Candle operations with a backward
//!   pass; transformers' tensor names).
//! * [`backbone`]: the classifier for inference on candle-transformers' BERT and XLM-R.
//! * [`tokens`]: tokens with code-point ranges, windows and padded batches.
//! * [`train`]: fine-tuning (random crops, AdamW, warm-up + cosine), saved as a transformers
//!   checkpoint; [`predict`]: tagging whole documents in windows.
//! * [`tiny`]: a tiny random BERT on the tiny tokenizer, for tests and the demo.
//!
//! Parity: logits, loss and every gradient against PyTorch + transformers on tiny random
//! BERT and RoBERTa classifiers, and candle-transformers' forward pass against the same
//! logits (`tests/encoder_parity.rs`).

pub mod backbone;
pub mod config;
pub mod model;
pub mod predict;
pub mod tiny;
pub mod tokens;
pub mod train;

use std::path::PathBuf;

/// Why the encoder could not be loaded, trained or used.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A checkpoint file is missing or wrong.
    #[error("{path}: {message}")]
    Config {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// There is nothing to train on.
    #[error("no documents to train on")]
    NoDocuments,
    /// A lock was poisoned by a panic elsewhere.
    #[error("the model's variables are unusable after a panic")]
    Poisoned,
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The metrics file failed.
    #[error(transparent)]
    Metrics(#[from] crate::train::metrics::MetricsError),
}
