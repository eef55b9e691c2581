//! # lamar-core
//!
//! The pure-Rust heart of lamar: everything that needs no GPU and no operating system, so that it
//! also runs in the browser (`wasm32-unknown-unknown`).
//!
//! | concept | module |
//! |---|---|
//! | the nine decision categories, gold labels | [`category`] |
//! | spans (code-point offsets) and documents | [`span`] |
//! | Python-compatible text handling | [`text`] |
//! | MedDec / LAMAR file formats | [`formats`] |
//! | spans ⇄ tagged text | [`codec`] |
//! | merging several models' spans (Span-Cluster Consensus, other voters) | [`ensemble`] |
//! | the synthetic MedDec-format corpus and simulated models | [`synth`] |
//! | exact-match span scores (a quick check, not the shared-task metric) | [`metrics`] |
//! | NLTK tokenizer ports (Treebank, word tokenizer, Punkt) | [`nltk`] |
//! | the official MedDec scorer | [`scorer`] |
//!
//! Offsets are always Unicode code points into the raw text, half-open, exactly as Python
//! indexes a `str`.

pub mod category;
pub mod codec;
pub mod ensemble;
pub mod formats;
pub mod metrics;
pub mod nltk;
pub mod prompt;
pub mod scorer;
pub mod span;
pub mod synth;
pub mod text;

pub use category::{Category, GoldLabel};
pub use span::{Document, Span};
