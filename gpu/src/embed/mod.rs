//! Qwen3-Embedding in Candle (`lamar pseudo embed --embedder qwen3`): Qwen3's layers as
//! candle-transformers computes them, with attention through lamar's flash-attention kernel on
//! CUDA (`embed::encoder`); the hidden state of each text's last token (the end-of-text token the
//! snapshot's tokenizer appends), L2-normalised, no instruction: what sentence-transformers
//! computes with the model's own configuration (LAMAR §8.2).
//!
//! Batches are right-padded: under the causal mask a real token never sees the padding after
//! it, so the last real token's state is the unpadded one (sentence-transformers pads on the
//! left and masks instead; the results agree, `tests/qwen3_embedding.rs`).

mod encoder;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_transformers::models::qwen3;
use encoder::Qwen3Encoder;
use std::path::{Path, PathBuf};

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A snapshot file that could not be read or parsed.
    #[error("{path}: {message}")]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A Candle operation failed.
    #[error("embedding failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// A text that tokenizes to nothing.
    #[error("text {0} has no tokens")]
    Empty(usize),
}

/// A loaded Qwen3-Embedding snapshot.
pub struct Qwen3Embedder {
    model: Qwen3Encoder,
    tokenizer: tokenizers::Tokenizer,
    dim: usize,
    device: Device,
}

fn snapshot_error(path: &Path, message: impl ToString) -> EmbedError {
    EmbedError::Snapshot {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

impl Qwen3Embedder {
    /// Loads `config.json`, the safetensors weights (with or without the `model.` prefix) and
    /// `tokenizer.json` of a snapshot folder. Texts are cut to `max_tokens` tokens (the
    /// end-of-text token kept).
    pub fn load(
        dir: &Path,
        dtype: DType,
        device: &Device,
        max_tokens: usize,
    ) -> Result<Qwen3Embedder, EmbedError> {
        let config_path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| snapshot_error(&config_path, e))?;
        let mut json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| snapshot_error(&config_path, e))?;
        // transformers ≥ 5 writes RoPE's base inside `rope_parameters`; Qwen3-Embedding's own
        // snapshots (transformers 4) at the top.
        if json.get("rope_theta").is_none()
            && let Some(theta) = json.pointer("/rope_parameters/rope_theta").cloned()
            && let Some(object) = json.as_object_mut()
        {
            object.insert("rope_theta".into(), theta);
        }
        let config: qwen3::Config =
            serde_json::from_value(json).map_err(|e| snapshot_error(&config_path, e))?;
        let mut weights: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| snapshot_error(dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        weights.sort();
        if weights.is_empty() {
            return Err(snapshot_error(dir, "no .safetensors weights"));
        }
        // Safety: the files are memory-mapped read-only; a file changed while mapped is the
        // user's to avoid, as with every safetensors loader.
        let vb =
            unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&weights, dtype, device) }?;
        // Qwen3-Embedding snapshots are saved from the bare model: `embed_tokens.weight`, not
        // `model.embed_tokens.weight`.
        let vb = if vb.contains_tensor("model.embed_tokens.weight") {
            vb
        } else {
            vb.rename_f(|name: &str| name.strip_prefix("model.").unwrap_or(name).to_string())
        };
        let model = Qwen3Encoder::load(&config, vb)?;
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| snapshot_error(&tokenizer_path, e))?;
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| snapshot_error(&tokenizer_path, e))?;
        tokenizer.with_padding(None);
        Ok(Qwen3Embedder {
            model,
            tokenizer,
            dim: config.hidden_size,
            device: device.clone(),
        })
    }

    /// Values per embedding (the hidden size).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Token ids of a text as the model sees it (special tokens added, cut to the limit).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| snapshot_error(Path::new("tokenizer.json"), e))
    }

    /// L2-normalised last-token embeddings of a batch of token sequences, in order.
    pub fn embed_tokens(&self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if let Some(k) = batch.iter().position(|t| t.is_empty()) {
            return Err(EmbedError::Empty(k));
        }
        let Some(longest) = batch.iter().map(Vec::len).max() else {
            return Ok(Vec::new());
        };
        let mut ids = Vec::with_capacity(batch.len() * longest);
        for tokens in batch {
            ids.extend_from_slice(tokens);
            ids.extend(std::iter::repeat_n(tokens[0], longest - tokens.len()));
        }
        let input = Tensor::from_vec(ids, (batch.len(), longest), &self.device)?;
        let hidden = self.model.forward(&input)?;
        let mut last = Vec::with_capacity(batch.len());
        for (row, tokens) in batch.iter().enumerate() {
            last.push(hidden.i((row, tokens.len() - 1))?);
        }
        let last = Tensor::stack(&last, 0)?.to_dtype(DType::F32)?;
        let norm = last.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(last.broadcast_div(&norm)?.to_vec2()?)
    }
}
