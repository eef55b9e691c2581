//! The text model's configuration, read from a Hugging Face `config.json`: either a text model's
//! own (`model_type: qwen3_5_text`) or the `text_config` of the multimodal checkpoint
//! (`Qwen/Qwen3.5-4B`, `model_type: qwen3_5`).

use serde::Deserialize;

/// What a layer mixes tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerType {
    /// Gated DeltaNet (linear attention with a recurrent state).
    LinearAttention,
    /// Gated softmax attention with a KV cache.
    FullAttention,
}

/// RoPE settings (`rope_parameters`).
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    /// Base of the rotary frequencies.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// Fraction of each head's dimensions that rotate.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
}

fn default_theta() -> f64 {
    10_000.0
}

/// The Qwen3.5 text configuration (the fields the text model uses).
#[derive(Debug, Clone, Deserialize)]
pub struct Qwen35Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// SwiGLU width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads of the full-attention layers.
    pub num_attention_heads: usize,
    /// Key/value heads of the full-attention layers.
    pub num_key_value_heads: usize,
    /// Head size of the full-attention layers.
    pub head_dim: usize,
    /// Query/key heads of the DeltaNet layers.
    pub linear_num_key_heads: usize,
    /// Value heads of the DeltaNet layers.
    pub linear_num_value_heads: usize,
    /// Query/key head size of the DeltaNet layers.
    pub linear_key_head_dim: usize,
    /// Value head size of the DeltaNet layers.
    pub linear_value_head_dim: usize,
    /// Kernel of the DeltaNet short convolution.
    pub linear_conv_kernel_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Whether the LM head is the embedding.
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    /// Each layer's kind.
    pub layer_types: Vec<LayerType>,
    /// RoPE settings.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// Older spelling of the rotary fraction.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// Older spelling of the rotary base.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// End-of-sequence token(s).
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or fields missing.
    #[error("config.json: {0}")]
    Json(#[from] serde_json::Error),
    /// Inconsistent sizes.
    #[error("config.json: {0}")]
    Invalid(String),
}

impl Qwen35Config {
    /// Reads the text configuration from a `config.json` text.
    pub fn from_json(text: &str) -> Result<Qwen35Config, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let text_config = value.get("text_config").cloned().unwrap_or(value);
        let config: Qwen35Config = serde_json::from_value(text_config)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.layer_types.len() != self.num_hidden_layers {
            return bad(format!(
                "{} layer_types for {} layers",
                self.layer_types.len(),
                self.num_hidden_layers
            ));
        }
        if self.num_key_value_heads == 0
            || !self
                .num_attention_heads
                .is_multiple_of(self.num_key_value_heads)
        {
            return bad("num_attention_heads must be a multiple of num_key_value_heads".into());
        }
        if self.linear_num_key_heads == 0
            || !self
                .linear_num_value_heads
                .is_multiple_of(self.linear_num_key_heads)
        {
            return bad("linear_num_value_heads must be a multiple of linear_num_key_heads".into());
        }
        if !self.rotary_dim().is_multiple_of(2) || self.rotary_dim() > self.head_dim {
            return bad(format!(
                "rotary dimension {} is not usable",
                self.rotary_dim()
            ));
        }
        Ok(())
    }

    /// Rotary base.
    pub fn theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .map(|r| r.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0)
    }

    /// Dimensions of each full-attention head that rotate.
    pub fn rotary_dim(&self) -> usize {
        let factor = self
            .rope_parameters
            .as_ref()
            .and_then(|r| r.partial_rotary_factor)
            .or(self.partial_rotary_factor)
            .unwrap_or(1.0);
        (self.head_dim as f64 * factor) as usize
    }
}
