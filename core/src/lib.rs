//! # lamar-core
//!
//! The pure-Rust heart of lamar: everything that needs no model and no GPU. It compiles to
//! WebAssembly (`wasm32-unknown-unknown`, the browser viewer runs it); the functions that read
//! or write files (in [`formats`], [`scorer::load`], [`scorer::evaluate`], [`ensemble::input`],
//! [`ensemble::tune`], [`prompt`], [`synth`]) use the standard library's file system, which
//! native builds have and the browser build never calls.
//!
//! | concept | module |
//! |---|---|
//! | the nine decision categories, gold labels | [`category`] |
//! | spans (code-point offsets) and documents | [`span`] |
//! | Python-compatible text handling | [`text`] |
//! | MedDec / LAMAR file formats, training rows from gold | [`formats`] |
//! | the task prompt the tagging model reads | [`prompt`] |
//! | spans ⇄ tagged text, a file of model outputs → offsets | [`codec`] |
//! | merging several models' spans (Span-Cluster Consensus, other voters, the tuner) | [`ensemble`] |
//! | scoring completions for GRPO (the [`reward::Reward`] trait) | [`reward`] |
//! | GRPO's advantages (GDPO) and DAPO's loss | [`grpo`] |
//! | pseudo-labels: unlabeled notes from NOTEEVENTS.csv | [`pseudo`] |
//! | the synthetic MedDec-format corpus and simulated models | [`synth`] |
//! | exact-match span scores (a quick check, not the shared-task metric) | [`metrics`] |
//! | NLTK tokenizer ports (Treebank, word tokenizer, Punkt) | [`nltk`] |
//! | the official MedDec scorer, files in → scores out | [`scorer`] |
//!
//! Offsets are always Unicode code points into the raw text, half-open, exactly as Python
//! indexes a `str`.

pub mod bio;
pub mod category;
pub mod codec;
pub mod ensemble;
pub mod formats;
pub mod grpo;
pub mod metrics;
pub mod nltk;
pub mod plot;
pub mod prompt;
pub mod pseudo;
pub mod reward;
pub mod scorer;
pub mod span;
pub mod synth;
pub mod text;

pub use category::{Category, GoldLabel};
pub use span::{Document, Span};
