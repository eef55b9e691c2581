//! The layers of the Qwen3.5 text model, one concept a file: [`norm`] (zero-centred RMSNorm and
//! the L2 norm of DeltaNet queries and keys), [`mlp`] (SwiGLU), [`attention`] (gated full
//! attention) and [`deltanet`] (Gated DeltaNet), and here the decoder layer that joins a token
//! mixer and an MLP with their norms.
//!
//! Every layer's `forward` runs over a whole sequence and takes the call's [`Step`] (positions,
//! bias, kernel switches) and, optionally, its part of a decoding [`Cache`](super::Cache): with
//! none, nothing is kept between calls (what training needs). Weights are read once at load
//! and never change; a layer holds no mutable state.

pub(crate) mod attention;
pub(crate) mod deltanet;
pub(crate) mod mlp;
pub(crate) mod norm;

use super::cache::LayerCache;
use super::config::{LayerType, Qwen35Config};
use super::step::Step;
use crate::lora::LoraAdapter;
use attention::FullAttention;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use deltanet::GatedDeltaNet;
use mlp::Mlp;
use norm::CenteredRmsNorm;

/// A layer's token mixer.
pub(crate) enum Mixer {
    /// Gated full attention.
    Attention(FullAttention),
    /// Gated DeltaNet (linear attention).
    DeltaNet(GatedDeltaNet),
}

/// One decoder layer: `h += mixer(norm(h)); h += mlp(norm(h))`.
pub(crate) struct DecoderLayer {
    pub(crate) mixer: Mixer,
    input_norm: CenteredRmsNorm,
    post_norm: CenteredRmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    /// Reads layer `vb` (`layers.{i}`) of the given kind.
    pub(crate) fn load(
        vb: VarBuilder,
        kind: LayerType,
        config: &Qwen35Config,
        lora: Option<&LoraAdapter>,
    ) -> Result<Self> {
        let mixer = match kind {
            LayerType::FullAttention => {
                Mixer::Attention(FullAttention::load(vb.pp("self_attn"), config, lora)?)
            }
            LayerType::LinearAttention => {
                Mixer::DeltaNet(GatedDeltaNet::load(vb.pp("linear_attn"), config, lora)?)
            }
        };
        let norm = |name: &str| {
            CenteredRmsNorm::load(vb.pp(name), config.hidden_size, config.rms_norm_eps)
        };
        Ok(DecoderLayer {
            mixer,
            input_norm: norm("input_layernorm")?,
            post_norm: norm("post_attention_layernorm")?,
            mlp: Mlp::load(vb.pp("mlp"), config, lora)?,
        })
    }

    /// The layer over the residual stream `h` `(B, T, hidden)`. `pending` is the previous
    /// layer's MLP output, not yet added to `h`: each residual addition is done by the norm that
    /// follows it (one kernel on CUDA). Returns this layer's MLP output, pending in turn.
    pub(crate) fn forward(
        &self,
        h: &mut Tensor,
        pending: Option<Tensor>,
        step: &Step,
        cache: Option<&mut LayerCache>,
    ) -> Result<Tensor> {
        let normed = self.input_norm.add_forward(h, pending, step.fused.norm)?;
        step.lap("residual + norm")?;
        // Profiling a training pass: marks split the layer's backward (the DeltaNet marks
        // its own stages).
        let normed = match &self.mixer {
            Mixer::Attention(_) => step.mark_backward(&normed, "backward: attention mixer")?,
            Mixer::DeltaNet(_) => normed,
        };
        let mixed = match (&self.mixer, cache) {
            (Mixer::Attention(a), None) => a.forward(&normed, step, None)?,
            (Mixer::Attention(a), Some(LayerCache::Attention(c))) => {
                a.forward(&normed, step, Some(c))?
            }
            (Mixer::DeltaNet(d), None) => d.forward(&normed, step, None)?,
            (Mixer::DeltaNet(d), Some(LayerCache::DeltaNet(c))) => {
                d.forward(&normed, step, Some(c))?
            }
            _ => candle_core::bail!("the cache was made for another model"),
        };
        let mixed = step.mark_backward(&mixed, "backward: residual + post-attention norm")?;
        let normed = self
            .post_norm
            .add_forward(h, Some(mixed), step.fused.norm)?;
        let normed =
            step.mark_backward(&normed, "backward: MLP gate/up projections (with adapters)")?;
        step.lap("residual + norm")?;
        let out = self.mlp.forward(&normed, step)?;
        step.lap("mlp")?;
        Ok(out)
    }

    /// Every projection of the layer: module path and `(in, out)` features.
    /// Whether the layer mixes tokens by full attention (else by Gated DeltaNet).
    pub(crate) fn is_attention(&self) -> bool {
        matches!(self.mixer, Mixer::Attention(_))
    }

    pub(crate) fn projections(&self) -> Result<Vec<(String, usize, usize)>> {
        let mut out = match &self.mixer {
            Mixer::Attention(a) => a.projections()?,
            Mixer::DeltaNet(d) => d.projections()?,
        };
        out.extend(self.mlp.projections()?);
        Ok(out)
    }

    /// An empty cache for this layer.
    pub(crate) fn new_cache(&self) -> LayerCache {
        match self.mixer {
            Mixer::Attention(_) => LayerCache::Attention(Default::default()),
            Mixer::DeltaNet(_) => LayerCache::DeltaNet(Default::default()),
        }
    }
}
