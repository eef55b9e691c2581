//! Qwen3's decoder stack run over whole sequences for their hidden states (what
//! Qwen3-Embedding needs: no cache, no sampling). The layer arithmetic is candle-transformers'
//! Qwen3 (its `Config`, weight names and order of operations); what differs is attention. On
//! CUDA with bf16 weights and a head size lamar's flash-attention forward takes (128, as in
//! Qwen3-Embedding, or 256), that kernel runs; elsewhere training's blocked attention
//! (`train::attention`). Neither builds a `[T × T]` matrix or copies the keys and values per
//! query head.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, RmsNorm, VarBuilder};
use candle_transformers::models::qwen3::Config;

/// One decoder layer's weights.
struct Layer {
    input_norm: RmsNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    post_attention_norm: RmsNorm,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

/// The model: token embeddings, the decoder layers, the final norm.
pub(super) struct Qwen3Encoder {
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    rope_theta: f64,
    activation: candle_nn::Activation,
}

fn linear(input: usize, output: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    if bias {
        candle_nn::linear(input, output, vb)
    } else {
        candle_nn::linear_no_bias(input, output, vb)
    }
}

impl Layer {
    fn load(cfg: &Config, vb: VarBuilder) -> Result<Layer> {
        let (hidden, hd) = (cfg.hidden_size, cfg.head_dim);
        let attention = vb.pp("self_attn");
        let mlp = vb.pp("mlp");
        let bias = cfg.attention_bias;
        Ok(Layer {
            input_norm: candle_nn::rms_norm(hidden, cfg.rms_norm_eps, vb.pp("input_layernorm"))?,
            q_proj: linear(
                hidden,
                cfg.num_attention_heads * hd,
                bias,
                attention.pp("q_proj"),
            )?,
            k_proj: linear(
                hidden,
                cfg.num_key_value_heads * hd,
                bias,
                attention.pp("k_proj"),
            )?,
            v_proj: linear(
                hidden,
                cfg.num_key_value_heads * hd,
                bias,
                attention.pp("v_proj"),
            )?,
            o_proj: linear(
                cfg.num_attention_heads * hd,
                hidden,
                bias,
                attention.pp("o_proj"),
            )?,
            q_norm: candle_nn::rms_norm(hd, cfg.rms_norm_eps, attention.pp("q_norm"))?,
            k_norm: candle_nn::rms_norm(hd, cfg.rms_norm_eps, attention.pp("k_norm"))?,
            post_attention_norm: candle_nn::rms_norm(
                hidden,
                cfg.rms_norm_eps,
                vb.pp("post_attention_layernorm"),
            )?,
            gate_proj: candle_nn::linear_no_bias(
                hidden,
                cfg.intermediate_size,
                mlp.pp("gate_proj"),
            )?,
            up_proj: candle_nn::linear_no_bias(hidden, cfg.intermediate_size, mlp.pp("up_proj"))?,
            down_proj: candle_nn::linear_no_bias(
                cfg.intermediate_size,
                hidden,
                mlp.pp("down_proj"),
            )?,
        })
    }
}

impl Qwen3Encoder {
    /// The model under `vb` (names as transformers saves `Qwen3Model` under `model.`).
    pub(super) fn load(cfg: &Config, vb: VarBuilder) -> Result<Qwen3Encoder> {
        if cfg.use_sliding_window {
            candle_core::bail!("Qwen3 with a sliding window is not supported");
        }
        if cfg.num_key_value_heads == 0
            || !cfg
                .num_attention_heads
                .is_multiple_of(cfg.num_key_value_heads)
        {
            candle_core::bail!(
                "{} attention heads cannot share {} key/value heads",
                cfg.num_attention_heads,
                cfg.num_key_value_heads
            );
        }
        let model = vb.pp("model");
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(cfg, model.pp("layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Qwen3Encoder {
            embed_tokens: candle_nn::embedding(
                cfg.vocab_size,
                cfg.hidden_size,
                model.pp("embed_tokens"),
            )?,
            layers,
            norm: candle_nn::rms_norm(cfg.hidden_size, cfg.rms_norm_eps, model.pp("norm"))?,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim: cfg.head_dim,
            rope_theta: cfg.rope_theta,
            activation: cfg.hidden_act,
        })
    }

    /// The final hidden states `(B, T, hidden)` of token ids `(B, T)`: every position attends
    /// to itself and those before it (right padding never reaches a real token).
    pub(super) fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let mut x = self.embed_tokens.forward(ids)?;
        let (cos, sin) = self.rotary(t, x.dtype(), x.device())?;
        for layer in self.layers.iter() {
            let h = self.attention(layer, &layer.input_norm.forward(&x)?, &cos, &sin)?;
            x = (x + h)?;
            let h = layer.post_attention_norm.forward(&x)?;
            let gate = self.activation.forward(&layer.gate_proj.forward(&h)?)?;
            let h = layer
                .down_proj
                .forward(&(gate * layer.up_proj.forward(&h)?)?)?;
            x = (x + h)?;
        }
        self.norm.forward(&x)
    }

    /// RoPE's cosines and sines `(T, head_dim / 2)` for positions `0 .. T`.
    fn rotary(&self, t: usize, dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / self.head_dim as f64) as f32)
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
        let positions = Tensor::arange(0u32, t as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((t, 1))?;
        let freqs = positions.matmul(&inv_freq)?;
        Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
    }

    /// The attention block's output `(B, T, hidden)` for normed input `x`.
    fn attention(&self, layer: &Layer, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        // Per-head RMS norms on (B, T, heads, hd), then (B, heads, T, hd) for RoPE.
        let heads = |proj: &Linear, norm: Option<&RmsNorm>, n: usize| -> Result<Tensor> {
            let y = proj.forward(x)?.reshape((b, t, n, hd))?;
            let y = match norm {
                Some(norm) => norm.forward(&y)?,
                None => y,
            };
            y.transpose(1, 2)?.contiguous()
        };
        let q = heads(&layer.q_proj, Some(&layer.q_norm), h)?;
        let k = heads(&layer.k_proj, Some(&layer.k_norm), kvh)?;
        let v = heads(&layer.v_proj, None, kvh)?;
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let out = attend(&q, &k, &v, scale)?;
        layer
            .o_proj
            .forward(&out.transpose(1, 2)?.reshape((b, t, h * hd))?)
    }
}

/// Causal attention of `q` `(B, H, T, hd)` over `k`, `v` `(B, KVH, T, hd)`: `(B, H, T, hd)`,
/// by training's attention ([`crate::train::attention::causal_attention`]): the flash forward
/// kernel where it applies, else blocks of queries whose scores never exceed a few `[block × T]`
/// matrices (a text of 32,768 tokens would need a `[T × T]` matrix of 4 GiB per head).
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    use crate::train::attention::{block_rows, causal_attention};
    let (_, h, t, _) = q.dims4()?;
    causal_attention(q, k, v, scale, block_rows(h, t), true)
}
