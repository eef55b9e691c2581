//! The encoder for inference: candle-transformers' BERT or XLM-R model (its fused layer norm
//! and softmax) under the classifier's linear head, loaded from a checkpoint folder.
//!
//! It computes what [`super::model::TokenClassifier`] computes; lamar trains with that one
//! (differentiable) and tags with this one. `tests/encoder_parity.rs` holds both to PyTorch.

use super::EncoderError;
use super::config::{EncoderConfig, Family};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use candle_transformers::models::{bert, xlm_roberta};
use std::collections::HashMap;
use std::path::Path;

enum Backbone {
    Bert(bert::BertModel),
    Roberta(xlm_roberta::XLMRobertaModel),
}

/// candle-transformers' encoder with a token-classification head.
pub struct InferenceClassifier {
    backbone: Backbone,
    classifier: Linear,
}

/// Reads every `*.safetensors` file of `dir` onto `device`.
pub fn read_weights(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>, EncoderError> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|source| EncoderError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(EncoderError::Config {
            path: dir.to_path_buf(),
            message: "no *.safetensors file".into(),
        });
    }
    let mut tensors = HashMap::new();
    for file in files {
        let read =
            candle_core::safetensors::load(&file, device).map_err(|e| EncoderError::Config {
                path: file.clone(),
                message: e.to_string(),
            })?;
        tensors.extend(read);
    }
    Ok(tensors)
}

impl InferenceClassifier {
    /// Loads the fine-tuned classifier of `labels` classes in `dir` (`config.json`,
    /// `*.safetensors` with `bert.`/`roberta.` and `classifier.` tensors).
    pub fn load(
        dir: &Path,
        config: &EncoderConfig,
        labels: usize,
        device: &Device,
    ) -> Result<InferenceClassifier, EncoderError> {
        let tensors = read_weights(dir, device)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let settings = serde_json::json!({
            "vocab_size": config.vocab_size,
            "hidden_size": config.hidden_size,
            "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads,
            "intermediate_size": config.intermediate_size,
            "hidden_act": config.hidden_act,
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "max_position_embeddings": config.max_position_embeddings,
            "type_vocab_size": config.type_vocab_size,
            "initializer_range": config.initializer_range,
            "layer_norm_eps": config.layer_norm_eps,
            "pad_token_id": config.pad_token_id,
            "position_embedding_type": "absolute",
            "model_type": config.model_type,
        });
        let bad = |message: String| EncoderError::Config {
            path: dir.join("config.json"),
            message,
        };
        let family = config.family().map_err(bad)?;
        let backbone_vb = vb.pp(config.prefix());
        let backbone = match family {
            Family::Bert => {
                let c: bert::Config =
                    serde_json::from_value(settings).map_err(|e| bad(e.to_string()))?;
                Backbone::Bert(bert::BertModel::load(backbone_vb, &c)?)
            }
            Family::Roberta => {
                let c: xlm_roberta::Config =
                    serde_json::from_value(settings).map_err(|e| bad(e.to_string()))?;
                Backbone::Roberta(xlm_roberta::XLMRobertaModel::new(&c, backbone_vb)?)
            }
        };
        let classifier = candle_nn::linear(config.hidden_size, labels, vb.pp("classifier"))?;
        Ok(InferenceClassifier {
            backbone,
            classifier,
        })
    }

    /// Logits `[batch, tokens, labels]` of `input_ids` (u32) where `attention_mask` allows.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<Tensor, EncoderError> {
        let types = input_ids.zeros_like()?;
        let hidden = match &self.backbone {
            Backbone::Bert(m) => m.forward(input_ids, &types, Some(attention_mask))?,
            Backbone::Roberta(m) => {
                m.forward(input_ids, attention_mask, &types, None, None, None)?
            }
        };
        Ok(self.classifier.forward(&hidden)?)
    }
}
