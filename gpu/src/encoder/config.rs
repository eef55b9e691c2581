//! An encoder checkpoint's `config.json`, as transformers writes it for BERT and RoBERTa
//! (`model_type` "bert", "roberta" or "xlm-roberta"), and the names of its tensors.

use super::EncoderError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The two families of absolute-position encoders lamar reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT: position `i` for the `i`-th token.
    Bert,
    /// RoBERTa and XLM-R: positions count non-padding tokens from `pad_token_id + 1`.
    Roberta,
}

/// The fields of `config.json` the encoder needs (others are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    /// "bert", "roberta" or "xlm-roberta".
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width.
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// "gelu" (exact, erf) or "gelu_new"/"gelu_pytorch_tanh" (tanh approximation).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Position embeddings.
    pub max_position_embeddings: usize,
    /// Token-type embeddings (all tokens use type 0).
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Standard deviation of the classifier's initial weights.
    #[serde(default = "default_init")]
    pub initializer_range: f64,
    /// Dropout on hidden states (training only).
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (training only).
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init() -> f64 {
    0.02
}
fn default_dropout() -> f64 {
    0.1
}

impl EncoderConfig {
    /// Reads `DIR/config.json`.
    pub fn from_dir(dir: &Path) -> Result<EncoderConfig, EncoderError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| EncoderError::Io {
            path: path.clone(),
            source,
        })?;
        let config: EncoderConfig =
            serde_json::from_str(&text).map_err(|e| EncoderError::Config {
                path: path.clone(),
                message: e.to_string(),
            })?;
        config.family().map_err(|message| EncoderError::Config {
            path: path.clone(),
            message,
        })?;
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(EncoderError::Config {
                path,
                message: format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    config.hidden_size, config.num_attention_heads
                ),
            });
        }
        Ok(config)
    }

    /// The family of `model_type`.
    pub fn family(&self) -> Result<Family, String> {
        match self.model_type.as_str() {
            "bert" => Ok(Family::Bert),
            "roberta" | "xlm-roberta" => Ok(Family::Roberta),
            other => Err(format!(
                "model_type {other:?}: lamar's encoder reads \"bert\", \"roberta\" and \"xlm-roberta\""
            )),
        }
    }

    /// The prefix of the backbone's tensors in a token-classification checkpoint
    /// ("bert" or "roberta", as transformers names them).
    pub fn prefix(&self) -> &'static str {
        match self.family() {
            Ok(Family::Bert) => "bert",
            _ => "roberta",
        }
    }

    /// Whether `hidden_act` is the tanh approximation of GELU.
    pub fn tanh_gelu(&self) -> Result<bool, String> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(false),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(true),
            other => Err(format!("hidden_act {other:?} is not a GELU")),
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The config of a tiny BERT sized to a vocabulary (the demo's and tests' encoder).
    pub fn tiny(vocab_size: usize) -> EncoderConfig {
        EncoderConfig {
            model_type: "bert".into(),
            vocab_size,
            hidden_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 128,
            hidden_act: "gelu".into(),
            max_position_embeddings: 256,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            initializer_range: 0.02,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
        }
    }

    /// The longest window the position embeddings allow (RoBERTa spends `pad_token_id + 1`
    /// of them on its offset).
    pub fn max_tokens(&self) -> usize {
        match self.family() {
            Ok(Family::Roberta) => self
                .max_position_embeddings
                .saturating_sub(self.pad_token_id as usize + 1),
            _ => self.max_position_embeddings,
        }
    }
}
