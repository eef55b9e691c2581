//! Text ⇄ token ids with the snapshot's own `tokenizer.json` (the `tokenizers` crate, the same
//! code transformers' fast tokenizers run), and the tokens that end a generation.

use std::path::{Path, PathBuf};

/// Why a tokenizer could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// `tokenizer.json` is missing or not a tokenizer.
    #[error("{path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Encoding or decoding failed.
    #[error("{path}: {message}")]
    Use {
        /// The tokenizer file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// A snapshot's tokenizer.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    stop: Vec<u32>,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` from a snapshot folder and works out the stop tokens:
    /// `eos_token_id` of `generation_config.json` (a number or a list, as transformers and
    /// vLLM read it), else of `config.json`, plus `<|im_end|>` when the vocabulary has it.
    pub fn from_snapshot(dir: &Path) -> Result<TextTokenizer, TokenizerError> {
        let path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| TokenizerError::Load {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut stop = Vec::new();
        for name in ["generation_config.json", "config.json"] {
            let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let eos = json
                .get("eos_token_id")
                .or_else(|| json.get("text_config").and_then(|t| t.get("eos_token_id")));
            match eos {
                Some(serde_json::Value::Number(n)) => stop.extend(n.as_u64().map(|n| n as u32)),
                Some(serde_json::Value::Array(ids)) => {
                    stop.extend(ids.iter().filter_map(|n| n.as_u64()).map(|n| n as u32))
                }
                _ => continue,
            }
            break;
        }
        if let Some(id) = inner.token_to_id("<|im_end|>") {
            stop.push(id);
        }
        stop.sort_unstable();
        stop.dedup();
        Ok(TextTokenizer { inner, path, stop })
    }

    /// Token ids of `text`, special tokens written in it recognised, nothing added around it
    /// (what `apply_chat_template(tokenize=True)` does with a rendered chat).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| self.error(e))
    }

    /// Text of `ids`; special tokens dropped when `skip_special` (how vLLM and
    /// `decode(skip_special_tokens=True)` return generations).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| self.error(e))
    }

    /// The id of a token, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Tokens that end a generation.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn error(&self, e: tokenizers::Error) -> TokenizerError {
        TokenizerError::Use {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}
