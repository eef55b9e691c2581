//! The Qwen3.5 text model: the embedding, a stack of decoder layers (`qwen35::layers`: each a
//! token mixer, Gated DeltaNet or gated full attention per `layer_types`, and a SwiGLU MLP, with
//! zero-centred RMSNorms) and a tied LM head. Layout and formulas follow transformers'
//! `modeling_qwen3_5.py` (the parity tests compare logits with it).
//!
//! Two ways through it: [`Qwen35Model::forward_sequence`] runs whole sequences with no cache
//! (what training needs), and [`Qwen35Model::forward_masked`] / [`Qwen35Model::forward_last`]
//! continue from a decoding [`Cache`] (prefill, then one token at a time; generation is in
//! [`super::generate`], CUDA graphs in [`super::graph`]).

use super::cache::{Cache, LayerCache};
use super::config::Qwen35Config;
use super::layers::DecoderLayer;
#[cfg(feature = "cuda")]
use super::layers::Mixer;
use super::layers::norm::CenteredRmsNorm;
use super::step::{FusedKernels, Step};
use super::stopwatch::Stopwatch;
use crate::lora::{LoraAdapter, apply_linear};
use crate::train::lora::TrainableLora;
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, linear_no_bias};
use std::sync::Arc;

/// The text model with its LM head.
pub struct Qwen35Model {
    pub(super) embed: Embedding,
    pub(super) layers: Vec<DecoderLayer>,
    pub(super) norm: CenteredRmsNorm,
    pub(super) lm_head: Linear,
    /// RoPE inverse frequencies `(1, 1, rotary_dim / 2)`, f32.
    pub(super) inv_freq: Tensor,
    config: Qwen35Config,
    pub(super) fused: FusedKernels,
    pub(super) cuda_graphs: bool,
    /// Why the last failed CUDA graph capture failed (decoding went on eagerly).
    pub(super) graph_failure: std::sync::Mutex<Option<String>>,
    stopwatch: Option<Arc<Stopwatch>>,
    /// A trainable adapter applied, frozen and unmerged, to every call with a cache
    /// ([`Qwen35Model::set_policy_adapter`]).
    pub(super) policy: Option<Arc<TrainableLora>>,
}

impl Qwen35Model {
    /// Builds the model from weights under `vb` (the text model's root: `model.language_model`
    /// of the multimodal checkpoint, `model` of a text-only one).
    pub fn new(config: &Qwen35Config, vb: VarBuilder) -> Result<Self> {
        Qwen35Model::with_adapter(config, vb, None)
    }

    /// [`Qwen35Model::new`] with a LoRA adapter applied to the projections it names (merged
    /// into the weights or kept apart, as the adapter says).
    pub fn with_adapter(
        config: &Qwen35Config,
        vb: VarBuilder,
        lora: Option<&LoraAdapter>,
    ) -> Result<Self> {
        let model = vb.pp("model");
        let text = if model.contains_tensor("language_model.embed_tokens.weight") {
            model.pp("language_model")
        } else {
            model
        };
        let embed_weight = text.get(
            (config.vocab_size, config.hidden_size),
            "embed_tokens.weight",
        )?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for (i, kind) in config.layer_types.iter().enumerate() {
            layers.push(DecoderLayer::load(
                text.pp(format!("layers.{i}")),
                *kind,
                config,
                lora,
            )?);
        }
        let lm_head = if config.tie_word_embeddings {
            Linear::new(embed_weight.clone(), None)
        } else {
            linear_no_bias(config.hidden_size, config.vocab_size, vb.pp("lm_head"))?
        };
        let rd = config.rotary_dim();
        let inv: Vec<f32> = (0..rd / 2)
            .map(|i| (1.0 / config.theta().powf(2.0 * i as f64 / rd as f64)) as f32)
            .collect();
        let inv_freq = Tensor::from_vec(inv, (1, 1, rd / 2), embed_weight.device())?;
        Ok(Qwen35Model {
            inv_freq,
            embed: Embedding::new(embed_weight, config.hidden_size),
            layers,
            norm: CenteredRmsNorm::load(text.pp("norm"), config.hidden_size, config.rms_norm_eps)?,
            lm_head,
            config: config.clone(),
            fused: FusedKernels::ALL,
            cuda_graphs: true,
            graph_failure: std::sync::Mutex::new(None),
            stopwatch: None,
            policy: None,
        })
    }

    /// Turns CUDA graphs for decoding steps on (the default) or off ([`super::graph`]; they
    /// need every fused kernel, and change nothing on the CPU).
    pub fn set_cuda_graphs(&mut self, on: bool) {
        self.cuda_graphs = on;
    }

    /// Why the last CUDA graph capture of a decoding step failed, if one did: decoding then went
    /// on with eager steps (correct, slower), so a caller that cares about speed can say so.
    pub fn graph_failure(&self) -> Option<String> {
        self.graph_failure.lock().ok().and_then(|f| f.clone())
    }

    /// Times every later forward call's stages on `watch` (or stops timing with `None`):
    /// see [`Stopwatch`]. Decoding steps through CUDA graphs are not timed.
    pub fn set_stopwatch(&mut self, watch: Option<Arc<Stopwatch>>) {
        self.stopwatch = watch;
    }

    /// Applies `lora` (frozen, unmerged: its deltas added to the projections it covers) to
    /// every later call with a cache, i.e. to generation, or stops applying one with `None`.
    /// The adapter's variables are shared, not copied: GRPO's rollouts sample from the policy
    /// as the optimiser has left it, with no copy of the base model per step. Decoding steps
    /// add its deltas in one kernel per projection and still run through CUDA graphs (a
    /// graph reads the adapter's variables where they are, so it sees each optimiser step).
    pub fn set_policy_adapter(&mut self, lora: Option<&TrainableLora>) {
        self.policy = lora.map(|l| Arc::new(l.frozen()));
    }

    /// Chooses which of lamar's fused CUDA kernels run ([`FusedKernels`]; all by default).
    pub fn set_fused_kernels(&mut self, fused: FusedKernels) {
        self.fused = fused;
    }

    /// Whether every layer can run inside a CUDA graph's decoding step of `rows` rows: all
    /// fused kernels on, attention sizes the decoding attention kernel handles, and a policy
    /// adapter (if any) that its kernel applies ([`crate::kernels::lora::fits`]).
    #[cfg(feature = "cuda")]
    pub(super) fn graphable(&self, rows: usize) -> bool {
        // The prefill and training kernels (`chunks`, `flash`) do not matter to a decoding
        // step.
        let decoding = FusedKernels {
            chunks: self.fused.chunks,
            flash: self.fused.flash,
            ..FusedKernels::ALL
        };
        self.fused == decoding
            && self
                .policy
                .as_ref()
                .is_none_or(|p| crate::kernels::lora::fits(rows, p.shape().rank))
            && self.layers.iter().all(|l| match &l.mixer {
                Mixer::Attention(a) => crate::kernels::attention::attention_decode_supports(
                    a.heads, a.kv_heads, a.head_dim,
                ),
                Mixer::DeltaNet(_) => true,
            })
    }

    /// The dtype of the weights (and of the hidden states).
    pub fn dtype(&self) -> DType {
        self.embed.embeddings().dtype()
    }

    /// The configuration.
    pub fn config(&self) -> &Qwen35Config {
        &self.config
    }

    /// An empty cache for a new batch of sequences.
    pub fn new_cache(&self) -> Cache {
        Cache {
            layers: self.layers.iter().map(DecoderLayer::new_cache).collect(),
            position: 0,
            reserve: 0,
            seen: None,
            next_position: Vec::new(),
            revision: 0,
        }
    }

    /// The rotary angles, attention bias and mask of one call, updating the cache's record of
    /// real and padding tokens (without a cache, the call is a whole sequence from position 0).
    fn step(
        &self,
        mask: Option<&Tensor>,
        b: usize,
        t: usize,
        cache: Option<&mut Cache>,
    ) -> Result<Step> {
        self.step_with(mask, b, t, cache, false, 0)
    }

    /// [`Self::step`]; with `causal_blocks` (a training pass: no cache, no padding), without
    /// the `[T × S]` causal bias, which attention then applies itself. Without a cache, the
    /// tokens' positions start at `start` (a training pass over a continuation of `start`
    /// earlier tokens).
    fn step_with(
        &self,
        mask: Option<&Tensor>,
        b: usize,
        t: usize,
        cache: Option<&mut Cache>,
        causal_blocks: bool,
        start: usize,
    ) -> Result<Step> {
        let device = self.embed.embeddings().device();
        let first = u32::try_from(start)
            .map_err(|_| candle_core::Error::Msg(format!("position {start} is out of range")))?;
        let mut fresh_positions = if start > 0 {
            vec![first; b]
        } else {
            Vec::new()
        };
        let mut fresh_seen = None;
        let (next_position, seen_before, reserve) = match cache {
            Some(cache) => (&mut cache.next_position, &mut cache.seen, cache.reserve),
            None => (&mut fresh_positions, &mut fresh_seen, 0),
        };
        let mask_f = match mask {
            Some(m) => m.to_dtype(DType::F32)?,
            None => Tensor::ones((b, t), DType::F32, device)?,
        };
        if next_position.is_empty() {
            *next_position = vec![0; b];
        } else if next_position.len() != b {
            candle_core::bail!(
                "the cache holds {} sequences but the input has {b}",
                next_position.len()
            );
        }
        // Position of each token: real tokens before it in its sequence (padding gets 0),
        // counted on the host (candle's `cumsum` multiplies by a dense T × T triangle, too much
        // for long prompts, and a device round trip per step costs more than this loop).
        let flags: Vec<Vec<u8>> = match mask {
            Some(m) => m.to_dtype(DType::U8)?.to_vec2()?,
            None => vec![vec![1; t]; b],
        };
        let mut positions = Vec::with_capacity(b * t);
        for (row, next) in flags.iter().zip(next_position.iter_mut()) {
            for &flag in row {
                positions.push(if flag == 0 { 0.0 } else { *next as f32 });
                *next += u32::from(flag != 0);
            }
        }
        let positions = Tensor::from_vec(positions, (b, t), device)?;
        // A mask without padding changes nothing, so the step drops it: an unpadded prompt then
        // takes the same paths (flash attention among them) whether or not a mask came with it,
        // and gives the same bits.
        let padded = flags.iter().flatten().any(|&flag| flag == 0);
        let seen = match seen_before.take() {
            Some(prev) => Tensor::cat(&[&prev, &mask_f], 1)?,
            None => mask_f.clone(),
        };
        *seen_before = Some(seen.clone());
        let s = seen.dim(1)?;
        let offset = s - t;
        let freqs = positions.unsqueeze(2)?.broadcast_mul(&self.inv_freq)?; // (B, T, rd/2)
        let emb = Tensor::cat(&[&freqs, &freqs], 2)?.unsqueeze(1)?;
        // Padding keys: a large finite penalty, so that a padding query (which sees only
        // padding) still gets a finite softmax.
        let padding = ((seen - 1.0)? * 1e30)?.reshape((b, 1, 1, s))?;
        let bias = if t == 1 || causal_blocks {
            // A single new token may look at everything before it; a training pass's
            // attention masks the future itself.
            padding
        } else {
            // Query i (at column offset + i) may not look at columns j > offset + i; built on
            // the device (a T × S mask is tens of megabytes for a long prompt).
            let query =
                Tensor::arange(offset as u32, (offset + t) as u32, device)?.reshape((t, 1))?;
            let key = Tensor::arange(0u32, s as u32, device)?.reshape((1, s))?;
            let future = key.broadcast_gt(&query)?;
            let causal = future.where_cond(
                &Tensor::full(f32::NEG_INFINITY, (t, s), device)?,
                &Tensor::zeros((t, s), DType::F32, device)?,
            )?;
            causal.reshape((1, 1, t, s))?.broadcast_add(&padding)?
        };
        Ok(Step {
            positions,
            inv_freq: self.inv_freq.flatten_all()?,
            cos: emb.cos()?,
            sin: emb.sin()?,
            bias,
            causal_blocks,
            mask: padded.then_some(mask_f),
            fused: self.fused,
            graph: None,
            stopwatch: self.stopwatch.clone(),
            reserve,
            lora: self.policy.clone(),
        })
    }

    /// Logits `(B, T, vocab)` for token ids `(B, T)` (u32) following what `cache` has seen.
    pub fn forward(&self, input_ids: &Tensor, cache: &mut Cache) -> Result<Tensor> {
        self.forward_masked(input_ids, None, cache)
    }

    /// [`Qwen35Model::forward`] for a batch of sequences of different lengths, left-padded:
    /// `mask` `(B, T)` is 1 for real tokens and 0 for padding (later calls may pass `None` when
    /// they add a real token to every sequence). The logits of real tokens equal those of each
    /// sequence run alone; those of padding are meaningless.
    pub fn forward_masked(
        &self,
        input_ids: &Tensor,
        mask: Option<&Tensor>,
        cache: &mut Cache,
    ) -> Result<Tensor> {
        let h = self.hidden(input_ids, mask, cache)?;
        let logits = apply_linear(&self.lm_head, &self.norm.forward(&h)?, self.fused.gemv)?;
        self.lap("final norm, LM head")?;
        Ok(logits)
    }

    /// Ends stage `name` on the stopwatch, if there is one.
    fn lap(&self, name: &'static str) -> Result<()> {
        Stopwatch::lap_on(self.stopwatch.as_deref(), name)
    }

    /// Logits `(B, vocab)` of the last position only (what generation needs: the LM head over
    /// a whole prompt would cost `T × vocab` for nothing).
    pub fn forward_last(
        &self,
        input_ids: &Tensor,
        mask: Option<&Tensor>,
        cache: &mut Cache,
    ) -> Result<Tensor> {
        let h = self.hidden(input_ids, mask, cache)?;
        let last = h.narrow(1, h.dim(1)? - 1, 1)?;
        let logits =
            apply_linear(&self.lm_head, &self.norm.forward(&last)?, self.fused.gemv)?.squeeze(1)?;
        self.lap("final norm, LM head")?;
        Ok(logits)
    }

    /// The last layer's hidden states `(B, T, hidden)`, before the final norm.
    fn hidden(
        &self,
        input_ids: &Tensor,
        mask: Option<&Tensor>,
        cache: &mut Cache,
    ) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        if let Some(watch) = &self.stopwatch {
            watch.restart()?;
        }
        let step = self.step(mask, b, t, Some(&mut *cache))?;
        step.lap("positions, masks, rotary angles")?;
        let h = self.run_layers(input_ids, &step, Some(&mut *cache))?;
        cache.position += t;
        cache.revision += 1;
        Ok(h)
    }

    /// The embedding and every layer for one call described by `step`: the last layer's hidden
    /// states `(B, T, hidden)`, before the final norm. With a cache, each layer continues from
    /// its part of it (`cache.position` is left to the caller); without one, nothing is kept.
    pub(super) fn run_layers(
        &self,
        input_ids: &Tensor,
        step: &Step,
        cache: Option<&mut Cache>,
    ) -> Result<Tensor> {
        let mut h = self.embed.forward(input_ids)?;
        step.lap("embedding")?;
        let mut caches = cache.map(|c| c.layers.iter_mut());
        let mut pending: Option<Tensor> = None;
        for layer in &self.layers {
            let layer_cache: Option<&mut LayerCache> = match &mut caches {
                Some(caches) => Some(caches.next().ok_or_else(|| {
                    candle_core::Error::Msg("the cache was made for another model".into())
                })?),
                None => None,
            };
            pending = Some(layer.forward(&mut h, pending.take(), step, layer_cache)?);
        }
        if let Some(last) = pending {
            h = (h + last)?;
        }
        Ok(h)
    }

    /// Logits `(B, T, vocab)` of whole sequences `(B, T)` (u32 token ids), with no cache: every
    /// sequence starts at position 0 and nothing is kept (training's forward pass). `mask`
    /// `(B, T)` marks real tokens (1) and left padding (0), as for
    /// [`Qwen35Model::forward_masked`]; the logits equal those of a fresh cache's first call.
    pub fn forward_sequence(&self, input_ids: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self.hidden_states(input_ids, mask)?;
        apply_linear(&self.lm_head, &h, self.fused.gemv)
    }

    /// The final-normed hidden states `(B, T, hidden)` of whole sequences with no cache (what
    /// the LM head reads; see [`Qwen35Model::forward_sequence`]), so that a caller can apply
    /// the head to a chunk of positions at a time.
    pub fn hidden_states(&self, input_ids: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        self.hidden_states_with(input_ids, mask, None)
    }

    /// [`Qwen35Model::hidden_states`] with a trainable adapter's deltas added to every
    /// projection it covers (the model's own weights stay as they are).
    pub fn hidden_states_with(
        &self,
        input_ids: &Tensor,
        mask: Option<&Tensor>,
        lora: Option<Arc<TrainableLora>>,
    ) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        let mut step = self.step(mask, b, t, None)?;
        if lora.is_some() {
            // lamar's fused kernels write their outputs in place, outside candle's autograd:
            // training runs the composite operations, whose backward candle knows.
            step.fused = super::step::FusedKernels::NONE;
        }
        step.lora = lora;
        let h = self.run_layers(input_ids, &step, None)?;
        self.norm.forward(&h)
    }

    /// The context of a training pass over `(b, t)` tokens at positions `start..start + t`
    /// with `lora`, for a caller that runs the layers one at a time
    /// ([`Qwen35Model::run_layer`], or [`Qwen35Model::run_layer_cached`] after a prefix of
    /// `start` tokens), as recomputation in the backward pass does. Of the fused kernels only
    /// those with a backward run (when the model allows them): the chunked delta rule's
    /// (`chunks`, `train::delta_rule`), flash attention (`flash`, `train::attention`) and the
    /// DeltaNet convolution's and gated norm's (`training_deltanet`, `train::conv`,
    /// `train::gated_norm`); the others write outside candle's autograd.
    pub(crate) fn training_step(
        &self,
        b: usize,
        t: usize,
        start: usize,
        lora: Arc<TrainableLora>,
    ) -> Result<Step> {
        let mut step = self.step_with(None, b, t, None, true, start)?;
        step.fused = super::step::FusedKernels {
            chunks: self.fused.chunks,
            flash: self.fused.flash,
            // The convolution's and the gated norm's differentiable kernels (`train::conv`,
            // `train::gated_norm`); the layer's decoding kernel has no backward and stays off
            // where an input is tracked.
            deltanet: self.fused.training_deltanet,
            // The MLP's activation kernel is differentiable (`train::swiglu`).
            mlp: self.fused.mlp,
            ..super::step::FusedKernels::NONE
        };
        step.lora = Some(lora);
        Ok(step)
    }

    /// The context of the forward pass of activation checkpointing (tokens at positions
    /// `start..start + t`), whose activations are kept, not differentiated: `lora` frozen
    /// ([`TrainableLora::frozen`]), so that nothing is tracked and every fused kernel the
    /// model allows runs, as in inference.
    pub(crate) fn checkpoint_step(
        &self,
        b: usize,
        t: usize,
        start: usize,
        lora: &TrainableLora,
    ) -> Result<Step> {
        let mut step = self.step_with(None, b, t, None, true, start)?;
        step.lora = Some(Arc::new(lora.frozen()));
        Ok(step)
    }

    /// The token embeddings of `input_ids`: the residual stream before the first layer.
    pub(crate) fn embed(&self, input_ids: &Tensor) -> Result<Tensor> {
        self.embed.forward(input_ids)
    }

    /// The number of decoder layers.
    pub(crate) fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Whether decoder layer `index` is a full-attention layer (else Gated DeltaNet).
    pub(crate) fn is_attention_layer(&self, index: usize) -> bool {
        self.layers[index].is_attention()
    }

    /// The residual stream after decoder layer `index`, from the one before it (no cache); the
    /// same values as [`Qwen35Model::hidden_states_with`] computes, one layer at a time.
    pub(crate) fn run_layer(&self, index: usize, residual: &Tensor, step: &Step) -> Result<Tensor> {
        // The fused residual + norm kernel adds into `h` in place: it must not be the caller's
        // tensor (activation checkpointing keeps it as the layer's saved input).
        let mut h = if step.fused.norm {
            residual.copy()?
        } else {
            residual.clone()
        };
        let out = self.layers[index].forward(&mut h, None, step, None)?;
        h + out
    }

    /// [`Qwen35Model::run_layer`] continuing from what `cache` holds (a training pass's
    /// prefix: keys and values, or convolution history and state, tracked or not) and leaving
    /// the layer's state after these tokens in it. In a training step (`causal_blocks`) the
    /// cache's tensors are joined, not written into buffers, so that gradients reach them.
    pub(crate) fn run_layer_cached(
        &self,
        index: usize,
        residual: &Tensor,
        step: &Step,
        cache: &mut LayerCache,
    ) -> Result<Tensor> {
        let mut h = if step.fused.norm {
            residual.copy()?
        } else {
            residual.clone()
        };
        let out = self.layers[index].forward(&mut h, None, step, Some(cache))?;
        h + out
    }

    /// An empty cache for decoder layer `index`.
    pub(crate) fn new_layer_cache(&self, index: usize) -> LayerCache {
        self.layers[index].new_cache()
    }

    /// The final norm (what the LM head reads) of the residual stream after the last layer.
    pub(crate) fn final_norm(&self, residual: &Tensor) -> Result<Tensor> {
        self.norm.forward(residual)
    }

    /// Every projection of the model: module path and `(in, out)` features, in layer order.
    pub fn projections(&self) -> Result<Vec<(String, usize, usize)>> {
        let mut out = Vec::new();
        for layer in &self.layers {
            out.extend(layer.projections()?);
        }
        Ok(out)
    }

    /// The LM head's weight `(vocab, hidden)` (the embedding's when tied).
    pub fn lm_head_weight(&self) -> &Tensor {
        self.lm_head.weight()
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn a_step_keeps_a_mask_only_where_it_pads() {
        let dir = tempfile::tempdir().unwrap();
        super::super::random::write_tiny_snapshot(dir.path(), 3).unwrap();
        let model = super::super::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
        let mask = |flags: Vec<u8>| Tensor::from_vec(flags, (2, 3), &Device::Cpu).unwrap();
        let unpadded = model.step(Some(&mask(vec![1; 6])), 2, 3, None).unwrap();
        assert!(unpadded.mask.is_none(), "a mask of ones is dropped");
        let padded = model.step(Some(&mask(vec![0, 1, 1, 1, 1, 1])), 2, 3, None);
        assert!(padded.unwrap().mask.is_some(), "a padding mask is kept");
    }
}
