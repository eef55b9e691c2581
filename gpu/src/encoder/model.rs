//! The token classifier lamar trains: a BERT/RoBERTa encoder and a linear layer over its last
//! hidden states (transformers' `*ForTokenClassification`), written with differentiable Candle
//! operations only.
//!
//! candle-transformers' BERT and XLM-R are the reference for inference ([`super::backbone`]),
//! but they cannot be trained: their layer norm is a fused operation without a backward pass.
//! This module computes the same function (the forward passes agree to f32 rounding, and loss
//! and gradients agree with PyTorch's, `tests/encoder_parity.rs`) from operations that Candle
//! differentiates. Tensor names are transformers', so a trained model loads in either.

use super::config::{EncoderConfig, Family};
use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::{Embedding, Linear, Module, VarBuilder};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// A layer norm from differentiable operations (`(x − mean) / √(var + ε) · w + b`).
struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Norm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Norm> {
        Ok(Norm {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// Dropout with lamar's own seeded generator, so that a training run is reproducible.
pub struct Dropout<'a> {
    rng: &'a mut ChaCha8Rng,
}

impl<'a> Dropout<'a> {
    /// Dropout drawing its masks from `rng`.
    pub fn new(rng: &'a mut ChaCha8Rng) -> Self {
        Dropout { rng }
    }

    fn apply(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        if p <= 0.0 {
            return Ok(x.clone());
        }
        let keep = (1.0 / (1.0 - p)) as f32;
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| {
                if self.rng.random::<f64>() < p {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}

/// `x` through `dropout` when training (rate `p`), unchanged otherwise.
fn maybe_dropout(dropout: &mut Option<Dropout>, x: Tensor, p: f64) -> Result<Tensor> {
    match dropout {
        Some(d) => d.apply(&x, p),
        None => Ok(x),
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

impl Layer {
    fn new(c: &EncoderConfig, vb: VarBuilder) -> Result<Layer> {
        let h = c.hidden_size;
        let a = vb.pp("attention");
        Ok(Layer {
            query: candle_nn::linear(h, h, a.pp("self").pp("query"))?,
            key: candle_nn::linear(h, h, a.pp("self").pp("key"))?,
            value: candle_nn::linear(h, h, a.pp("self").pp("value"))?,
            attention_out: candle_nn::linear(h, h, a.pp("output").pp("dense"))?,
            attention_norm: Norm::new(h, c.layer_norm_eps, a.pp("output").pp("LayerNorm"))?,
            intermediate: candle_nn::linear(
                h,
                c.intermediate_size,
                vb.pp("intermediate").pp("dense"),
            )?,
            output: candle_nn::linear(c.intermediate_size, h, vb.pp("output").pp("dense"))?,
            output_norm: Norm::new(h, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
        })
    }
}

/// A BERT/RoBERTa token classifier.
pub struct TokenClassifier {
    config: EncoderConfig,
    tanh_gelu: bool,
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    classifier: Linear,
}

impl TokenClassifier {
    /// The classifier of `labels` classes over the encoder of `config`, its tensors under
    /// transformers' names (`bert.`/`roberta.` for the encoder, `classifier.` for the head).
    /// With a `VarBuilder` over a `VarMap`, missing tensors are created (the head: normal with
    /// `initializer_range`, zero bias).
    pub fn new(config: &EncoderConfig, labels: usize, vb: VarBuilder) -> Result<TokenClassifier> {
        let tanh_gelu = config.tanh_gelu().map_err(candle_core::Error::msg)?;
        let h = config.hidden_size;
        let e = vb.pp(config.prefix()).pp("embeddings");
        let embedding = |n: usize, name: &str| -> Result<Embedding> {
            let w = e.pp(name).get_with_hints(
                (n, h),
                "weight",
                candle_nn::Init::Randn {
                    mean: 0.0,
                    stdev: config.initializer_range,
                },
            )?;
            Ok(Embedding::new(w, h))
        };
        let words = embedding(config.vocab_size, "word_embeddings")?;
        let positions = embedding(config.max_position_embeddings, "position_embeddings")?;
        let token_types = embedding(config.type_vocab_size, "token_type_embeddings")?;
        let embedding_norm = Norm::new(h, config.layer_norm_eps, e.pp("LayerNorm"))?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                Layer::new(
                    config,
                    vb.pp(config.prefix())
                        .pp("encoder")
                        .pp("layer")
                        .pp(i.to_string()),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let head = vb.pp("classifier");
        let classifier = Linear::new(
            head.get_with_hints(
                (labels, h),
                "weight",
                candle_nn::Init::Randn {
                    mean: 0.0,
                    stdev: config.initializer_range,
                },
            )?,
            Some(head.get_with_hints(labels, "bias", candle_nn::Init::Const(0.0))?),
        );
        Ok(TokenClassifier {
            config: config.clone(),
            tanh_gelu,
            words,
            positions,
            token_types,
            embedding_norm,
            layers,
            classifier,
        })
    }

    /// The encoder's config.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Logits `[batch, tokens, labels]` of `input_ids` (`[batch, tokens]`, u32) where
    /// `attention_mask` (same shape, 1 for a token, 0 for padding) allows; `dropout` is given
    /// while training.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        mut dropout: Option<Dropout>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t) = input_ids.dims2()?;
        let positions = position_ids(c, input_ids)?;
        let token_type = self.token_types.embeddings().narrow(0, 0, 1)?;
        let x = self
            .words
            .forward(input_ids)?
            .broadcast_add(&self.positions.forward(&positions)?)?
            .broadcast_add(&token_type)?;
        let x = self.embedding_norm.forward(&x)?;
        let mut x = maybe_dropout(&mut dropout, x, c.hidden_dropout_prob)?;
        // Additive mask over keys, [b, 1, 1, t]: 0 where allowed, the f32 minimum elsewhere.
        let mask = attention_mask.to_dtype(DType::F32)?;
        let bias = ((mask.ones_like()? - mask)? * f64::from(f32::MIN))?
            .to_dtype(x.dtype())?
            .reshape((b, 1, 1, t))?;
        let heads = c.num_attention_heads;
        let d = c.head_dim();
        let scale = 1.0 / (d as f64).sqrt();
        for layer in &self.layers {
            let split = |l: &Linear| -> Result<Tensor> {
                l.forward(&x)?
                    .reshape((b, t, heads, d))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, v) = (
                split(&layer.query)?,
                split(&layer.key)?,
                split(&layer.value)?,
            );
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let probs = maybe_dropout(&mut dropout, probs, c.attention_probs_dropout_prob)?;
            let context =
                probs
                    .matmul(&v)?
                    .transpose(1, 2)?
                    .contiguous()?
                    .reshape((b, t, c.hidden_size))?;
            let attended = maybe_dropout(
                &mut dropout,
                layer.attention_out.forward(&context)?,
                c.hidden_dropout_prob,
            )?;
            let h = layer.attention_norm.forward(&(attended + &x)?)?;
            let inner = layer.intermediate.forward(&h)?;
            let inner = if self.tanh_gelu {
                inner.gelu()?
            } else {
                inner.gelu_erf()?
            };
            let out = maybe_dropout(
                &mut dropout,
                layer.output.forward(&inner)?,
                c.hidden_dropout_prob,
            )?;
            x = layer.output_norm.forward(&(out + h)?)?;
        }
        let x = maybe_dropout(&mut dropout, x, c.hidden_dropout_prob)?;
        self.classifier.forward(&x)
    }
}

/// Position ids `[batch, tokens]` (u32): `0..t` for BERT; for RoBERTa, `pad + k` for the
/// `k`-th non-padding token (from 1) and `pad` on padding, as transformers numbers them.
pub fn position_ids(config: &EncoderConfig, input_ids: &Tensor) -> Result<Tensor> {
    let (b, t) = input_ids.dims2()?;
    let ids = input_ids.to_dtype(DType::U32)?.to_vec2::<u32>()?;
    let pad = config.pad_token_id;
    let roberta = matches!(config.family(), Ok(Family::Roberta));
    let mut out = Vec::with_capacity(b * t);
    for row in &ids {
        let mut seen = 0u32;
        for (i, &id) in row.iter().enumerate() {
            if roberta {
                if id == pad {
                    out.push(pad);
                } else {
                    seen += 1;
                    out.push(pad + seen);
                }
            } else {
                out.push(i as u32);
            }
        }
    }
    Tensor::from_vec(out, (b, t), input_ids.device())
}

/// Mean cross-entropy of `logits` (`[batch, tokens, labels]`) over the tokens whose label is
/// not negative (`labels`: one per token, row-major; PyTorch's `ignore_index = -100`).
/// `None` when no token is labelled.
pub fn token_cross_entropy(logits: &Tensor, labels: &[i64]) -> Result<Option<Tensor>> {
    let (b, t, n) = logits.dims3()?;
    if labels.len() != b * t {
        candle_core::bail!("{} labels for {} tokens", labels.len(), b * t);
    }
    let rows: Vec<u32> = (0..labels.len())
        .filter(|&i| labels[i] >= 0)
        .map(|i| i as u32)
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let targets: Vec<u32> = rows.iter().map(|&i| labels[i as usize] as u32).collect();
    let device: &Device = logits.device();
    let picked = logits
        .reshape((b * t, n))?
        .index_select(&Tensor::new(rows.as_slice(), device)?, 0)?;
    let targets = Tensor::new(targets.as_slice(), device)?;
    candle_nn::loss::cross_entropy(&picked.to_dtype(DType::F32)?, &targets).map(Some)
}
