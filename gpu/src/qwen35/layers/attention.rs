//! Gated full attention: queries (with a per-head output gate), keys and values from one
//! stacked projection, zero-centred RMSNorm on queries and keys, partial rotary embeddings,
//! grouped-query attention, then the sigmoid gate and the output projection.

use super::norm::CenteredRmsNorm;
use crate::lora::{FusedProjection, LoraAdapter, Projection};
use crate::qwen35::cache::AttentionCache;
use crate::qwen35::config::Qwen35Config;
use crate::qwen35::step::Step;
use candle_core::{D, Result, Tensor};
use candle_nn::VarBuilder;

/// Gated full attention with partial RoPE and a per-head output gate.
pub(crate) struct FullAttention {
    /// `q_proj` (queries and gates), `k_proj`, `v_proj`.
    qkv: FusedProjection,
    o: Projection,
    q_norm: CenteredRmsNorm,
    k_norm: CenteredRmsNorm,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    rotary_dim: usize,
}

impl FullAttention {
    /// Reads `q_proj`, `k_proj`, `v_proj`, `o_proj`, `q_norm` and `k_norm` under `vb`.
    pub(crate) fn load(
        vb: VarBuilder,
        c: &Qwen35Config,
        lora: Option<&LoraAdapter>,
    ) -> Result<Self> {
        let (h, kv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        Ok(FullAttention {
            qkv: FusedProjection::new(vec![
                Projection::load(c.hidden_size, h * hd * 2, vb.pp("q_proj"), lora)?,
                Projection::load(c.hidden_size, kv * hd, vb.pp("k_proj"), lora)?,
                Projection::load(c.hidden_size, kv * hd, vb.pp("v_proj"), lora)?,
            ])?,
            o: Projection::load(h * hd, c.hidden_size, vb.pp("o_proj"), lora)?,
            q_norm: CenteredRmsNorm::load(vb.pp("q_norm"), hd, c.rms_norm_eps)?,
            k_norm: CenteredRmsNorm::load(vb.pp("k_norm"), hd, c.rms_norm_eps)?,
            heads: h,
            kv_heads: kv,
            head_dim: hd,
            rotary_dim: c.rotary_dim(),
        })
    }

    /// The layer's projections: module path and `(in, out)` features.
    pub(crate) fn projections(&self) -> Result<Vec<(String, usize, usize)>> {
        let mut out = self.qkv.parts()?;
        let (input, output) = self.o.dims()?;
        out.push((self.o.path().to_string(), input, output));
        Ok(out)
    }

    /// Rotates the first `rotary_dim` dimensions of `x` (B, H, T, hd) by the angles whose
    /// cosines and sines are `cos`, `sin` (B, 1, T, rotary_dim; rotate-half convention); the
    /// rest pass through.
    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let hd = x.dim(3)?;
        let rd = self.rotary_dim;
        if rd == 0 {
            return Ok(x.clone());
        }
        let rot = x.narrow(D::Minus1, 0, rd)?;
        let half = rd / 2;
        let rotated_half = Tensor::cat(
            &[
                &rot.narrow(D::Minus1, half, half)?.neg()?,
                &rot.narrow(D::Minus1, 0, half)?,
            ],
            D::Minus1,
        )?;
        let (cos, sin) = (cos.to_dtype(x.dtype())?, sin.to_dtype(x.dtype())?);
        let turned = (rot.broadcast_mul(&cos)? + rotated_half.broadcast_mul(&sin)?)?;
        if rd == hd {
            return Ok(turned);
        }
        Tensor::cat(&[&turned, &x.narrow(D::Minus1, rd, hd - rd)?], D::Minus1)
    }

    /// The layer's output for `x` `(B, T, hidden)`. With a `cache`, the new keys and values are
    /// appended to it and the queries attend over everything it holds (on CUDA, a single new
    /// token goes through lamar's decoding kernels); without one, over `x` alone (a whole
    /// sequence, e.g. for training).
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        step: &Step,
        #[cfg_attr(not(feature = "cuda"), allow(unused_mut))] mut cache: Option<
            &mut AttentionCache,
        >,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let [qg, k, v]: [Tensor; 3] = self
            .qkv
            .forward_with(x, step.fused.gemv, step.lora.as_deref())?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("q/k/v projection".into()))?;
        step.lap("attention: q/k/v projection")?;
        #[cfg(feature = "cuda")]
        if t == 1
            && step.fused.attention
            && !step.causal_blocks
            && x.device().is_cuda()
            && let Some(cache) = cache.as_deref_mut()
        {
            use crate::kernels::attention::{
                AttentionCore, AttentionDecode, Count, attention_decode, attention_decode_prologue,
                attention_decode_supports,
            };
            // Inside a CUDA graph's capture the key/value column and the length come from the
            // device (`[column, length]`), the buffers must already have room (the graph's
            // owner checks), the graph's bias gets each new column opened, and the host-side
            // length is left for the owner to advance after each replay.
            let counters = match &step.graph {
                Some(c) => Some((c.narrow(0, 0, 1)?, c.narrow(0, 1, 1)?)),
                None => None,
            };
            let room = if counters.is_some() { 0 } else { 1 };
            let (key_cache, value_cache) = cache.make_room((b, kvh, room, hd), x, step.reserve)?;
            let q = attention_decode_prologue(&AttentionDecode {
                query_gate: &qg,
                key: &k,
                value: &v,
                q_scale: &self.q_norm.scale,
                k_scale: &self.k_norm.scale,
                positions: &step.positions,
                inv_freq: &step.inv_freq,
                key_cache: &key_cache,
                value_cache: &value_cache,
                column: match &counters {
                    Some((column, _)) => Count::Device(column),
                    None => Count::Host(cache.len),
                },
                open_bias: counters.as_ref().map(|_| &step.bias),
                heads: h,
                kv_heads: kvh,
                head_dim: hd,
                rotary: self.rotary_dim,
                eps: self.q_norm.eps,
            })?;
            let (length, keys) = match &counters {
                Some((_, length)) => (Count::Device(length), key_cache.dim(2)?),
                None => {
                    cache.len += 1;
                    (Count::Host(cache.len), cache.len)
                }
            };
            // A graph is only captured for models whose sizes the kernel supports.
            if counters.is_some() || attention_decode_supports(h, kvh, hd) {
                let out = attention_decode(&AttentionCore {
                    q: &q,
                    key_cache: &key_cache,
                    value_cache: &value_cache,
                    bias: &step.bias,
                    length,
                    keys,
                    query_gate: &qg,
                })?;
                return self
                    .o
                    .project_with(&out, step.fused.gemv, step.lora.as_deref());
            }
            let (k, v) = cache.filled()?;
            let gate = qg
                .reshape((b, t, h, 2 * hd))?
                .narrow(D::Minus1, hd, hd)?
                .reshape((b, t, h * hd))?;
            return self.attend(&q, &k, &v, &gate, step);
        }
        // Per head: [query (hd) | gate (hd)].
        let qg = qg.reshape((b, t, h, 2 * hd))?;
        let query = qg.narrow(D::Minus1, 0, hd)?;
        let gate = qg.narrow(D::Minus1, hd, hd)?.reshape((b, t, h * hd))?;
        let q = self.q_norm.forward(&query)?.transpose(1, 2)?.contiguous()?;
        let k = self
            .k_norm
            .forward(&k.reshape((b, t, kvh, hd))?)?
            .transpose(1, 2)?
            .contiguous()?;
        let v = v.reshape((b, t, kvh, hd))?.transpose(1, 2)?.contiguous()?;
        let (q, k) = (
            self.rope(&q, &step.cos, &step.sin)?.contiguous()?,
            self.rope(&k, &step.cos, &step.sin)?.contiguous()?,
        );
        let (k, v) = match cache {
            // A training pass continuing a prefix: joined, so that gradients reach the
            // prefix's keys and values.
            Some(cache) if step.causal_blocks => cache.join(&k, &v)?,
            Some(cache) => cache.append(&k, &v, step.reserve)?,
            None => (k, v),
        };
        step.lap("attention: norms, RoPE, cache")?;
        self.attend(&q, &k, &v, &gate, step)
    }

    /// A whole prompt from an empty cache, without padding (the bias is then only causal):
    /// lamar's flash-attention forward (CUDA, bf16, the head sizes it takes; training's kernel)
    /// instead of a `[T × S]` matrix of scores. `None` where it does not apply.
    fn flash_prefill(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        scale: f64,
        step: &Step,
    ) -> Result<Option<Tensor>> {
        #[cfg(feature = "cuda")]
        if step.fused.flash
            && step.mask.is_none()
            && step.graph.is_none()
            && q.dim(2)? > 1
            && q.dim(2)? == k.dim(2)?
            && let Some((out, _log_sum_exp)) =
                crate::kernels::flash_attention::flash_forward(q, k, v, scale)?
        {
            return Ok(Some(out));
        }
        #[cfg(not(feature = "cuda"))]
        let _ = (q, k, v, scale, step);
        Ok(None)
    }

    /// Attention of the queries `(B, H, T, hd)` over all keys and values so far
    /// `(B, kv_heads, S, hd)`, with the step's bias, then the output gate and projection.
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        gate: &Tensor,
        step: &Step,
    ) -> Result<Tensor> {
        let (b, h, t, hd) = q.dims4()?;
        let kvh = self.kv_heads;
        let s = k.dim(2)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let out = if step.causal_blocks {
            // Training: causal attention in blocks of queries, with its own backward; no
            // `[T × S]` matrix (the step has no causal bias either).
            use crate::train::attention::{block_rows, causal_attention};
            causal_attention(q, k, v, scale, block_rows(h, s), step.fused.flash)?
        } else if let Some(out) = Self::flash_prefill(q, k, v, scale, step)? {
            out
        } else {
            // Grouped-query attention without copying keys and values per query head: the
            // `n` query heads sharing one key/value head are stacked along the token axis.
            let n = h / kvh;
            let q = q.reshape((b, kvh, n * t, hd))?;
            let scores = (q.matmul(&k.t()?)? * scale)?
                .reshape((b, kvh, n, t, s))?
                .broadcast_add(&step.bias.to_dtype(q.dtype())?.unsqueeze(1)?)?;
            let probs = if crate::train::ops::tracked(&[&scores]) {
                crate::train::ops::softmax_last_dim(&scores)?
            } else {
                candle_nn::ops::softmax_last_dim(&scores)?
            };
            probs
                .reshape((b, kvh, n * t, s))?
                .matmul(v)?
                .reshape((b, h, t, hd))?
        };
        let out = out.transpose(1, 2)?.contiguous()?.reshape((b, t, h * hd))?;
        step.lap("attention: scores, softmax, values")?;
        let gated = out.mul(&candle_nn::ops::sigmoid(gate)?)?;
        let out = self
            .o
            .project_with(&gated, step.fused.gemv, step.lora.as_deref())?;
        step.lap("attention: gate, output projection")?;
        Ok(out)
    }
}
