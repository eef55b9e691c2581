//! The tag codec: spans ⇄ tagged text.
//!
//! * [`encode()`] writes gold spans into a document as inline tags (the training target).
//! * [`canonicalize`] tells what a round trip returns: same-category crossing spans come back
//!   nested, because tags carry no identity (everything else round-trips exactly).
//! * [`decode()`] reads a model's tagged output back into spans aligned to the raw text, robust to
//!   malformed markup and to text the model changed, and reports every span it had to drop.
//!
//! Stages, one module each: [`parse`] (tags → spans in the tag-free text), [`align`] (span text
//! → raw offsets, the reference's cascade), [`difflib`] (the fuzzy matcher the cascade needs),
//! and [`decode`](mod@decode) (the pipeline, with lamar's verbatim shortcut); [`outputs`] decodes
//! a whole file of model outputs with totals and the dropped spans.

pub mod align;
pub mod canonical;
pub mod decode;
pub mod difflib;
pub mod encode;
mod fuzzy;
pub mod outputs;
pub mod parse;

pub use align::{AlignMethod, AlignParams, DropReason};
pub use canonical::{canonicalize, same_category_crossings};
pub use decode::{AlignedSpan, DecodeOptions, Decoded, DroppedSpan, decision_text, decode};
pub use encode::{SpanOutOfText, encode, encoding_order};
pub use outputs::{DecodeTally, DecodedFile, decode_outputs, dropped_csv};
pub use parse::{ParseDiagnostics, ParsedOutput, TaggedSpan, parse_tagged};
