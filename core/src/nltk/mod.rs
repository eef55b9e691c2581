//! Ports of the NLTK tokenizers the MedDec evaluator depends on.
//!
//! | NLTK | here | used by |
//! |---|---|---|
//! | `TreebankWordTokenizer.span_tokenize` (+ `util.align_tokens`) | [`treebank`] | `refine_span` (span F1) |
//! | `NLTKWordTokenizer` (`tokenize/destructive.py`) | [`destructive`] | `word_tokenize` |
//! | `PunktSentenceTokenizer` with the English `punkt_tab` model | [`punkt`] | `word_tokenize` |
//! | `word_tokenize` | [`word_tokenize`] | token F1 |
//!
//! NLTK's behaviour changed between releases and moved token F1 by up to 0.07 on one input, so
//! the word tokenizer takes an [`NltkVersion`]. Everything is checked differentially against the
//! real NLTK (installed from PyPI) by `core/tests/nltk_parity.rs`.
//!
//! Python's regex classes differ from Rust's: `\w`, `\d` and `\s` follow CPython 3.11's Unicode
//! 14 tables ([`python_unicode`]), and `$` also matches before a final newline. [`pyre`] builds
//! Rust regexes with Python's meaning.

pub mod destructive;
pub mod punkt;
pub mod pyre;
pub mod python_unicode;
pub mod rules;
pub mod treebank;
pub mod word_tokenize;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which NLTK release's word-tokenizer rules to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum NltkVersion {
    /// NLTK 3.8.1 (MedDec's `requirements.txt`): no whitespace normalisation before the
    /// contraction rules, so `can't\n` stays one token; Unicode dashes are not split.
    V3_8,
    /// NLTK 3.9.2 (current when the shared-task evaluator was published): like 3.9.4 but
    /// without splitting the Unicode dashes U+2012–U+2015.
    V3_9_2,
    /// NLTK 3.9.4 (the last 3.9 release, current at the end of the shared task): the default.
    #[default]
    V3_9,
    /// NLTK 3.10.x (3.10.4): a leading `'` is split off words (`'neg` → `'`, `neg`).
    V3_10,
}

impl NltkVersion {
    /// The release the rules were taken from.
    pub fn release(self) -> &'static str {
        match self {
            NltkVersion::V3_8 => "3.8.1",
            NltkVersion::V3_9_2 => "3.9.2",
            NltkVersion::V3_9 => "3.9.4",
            NltkVersion::V3_10 => "3.10.4",
        }
    }
}

impl fmt::Display for NltkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.release())
    }
}

/// Error for an unknown NLTK version string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown NLTK version `{0}` (expected 3.8, 3.9.2, 3.9 or 3.10)")]
pub struct UnknownNltkVersion(pub String);

impl FromStr for NltkVersion {
    type Err = UnknownNltkVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "3.8" | "3.8.1" => Ok(NltkVersion::V3_8),
            "3.9.2" => Ok(NltkVersion::V3_9_2),
            "3.9" | "3.9.4" => Ok(NltkVersion::V3_9),
            "3.10" | "3.10.4" => Ok(NltkVersion::V3_10),
            other => Err(UnknownNltkVersion(other.to_string())),
        }
    }
}
