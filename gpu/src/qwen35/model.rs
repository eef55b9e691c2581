//! The Qwen3.5 text model: a stack of decoder layers, each a token mixer (Gated DeltaNet or gated
//! full attention, per `layer_types`) and a SwiGLU MLP, with zero-centred RMSNorms and a tied LM
//! head. Layout and formulas follow transformers' `modeling_qwen3_5.py` (the parity tests compare
//! logits with it). The DeltaNet runs its chunked form for prefill
//! ([`delta_rule_chunked`](super::delta_rule::delta_rule_chunked)) and its recurrent form for
//! decoding ([`delta_rule_recurrent`]).

use super::config::{LayerType, Qwen35Config};
use super::delta_rule::{Chunks, delta_rule_recurrent};
use super::graph::{GREEDY_STEPS, GraphSlot};
use super::stopwatch::Stopwatch;
use crate::lora::{FusedProjection, LoraAdapter, Projection, apply_linear};
use crate::sampling::{Sampler, SamplingParams};
use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, linear_no_bias};
use std::collections::VecDeque;
use std::sync::Arc;

/// `x / sqrt(mean(x²) + eps) · scale` over the last dimension, computed in f32 (one fused
/// kernel) and returned in f32.
fn rms_scaled(x: &Tensor, scale: &Tensor, eps: f64) -> Result<Tensor> {
    candle_nn::ops::rms_norm(&x.to_dtype(DType::F32)?.contiguous()?, scale, eps as f32)
}

/// `x / ‖x‖₂` (with transformers' `1e-6` inside the root) times `factor`, over the last
/// dimension, in f32: the fused RMS norm does it, since
/// `x / sqrt(Σx² + ε) = x / sqrt(mean(x²) + ε/d) / √d`. `scale` is [`l2_scale`]`(d, factor)`.
fn l2_normalised(x: &Tensor, scale: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    candle_nn::ops::rms_norm(&x.contiguous()?, scale, (1e-6 / d as f64) as f32)
}

/// The RMS-norm weight that makes [`l2_normalised`] an L2 norm times `factor` over `d` values.
fn l2_scale(d: usize, factor: f64, device: &Device) -> Result<Tensor> {
    Tensor::full((factor / (d as f64).sqrt()) as f32, d, device)
}

/// Zero-centred RMSNorm: `rms(x) · (1 + w)` in f32, cast back (Qwen3.5's stored weights are
/// offsets from 1).
pub(super) struct CenteredRmsNorm {
    scale: Tensor,
    eps: f64,
}

impl CenteredRmsNorm {
    /// [`CenteredRmsNorm::forward`] for the graph module.
    #[cfg(feature = "cuda")]
    pub(super) fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)
    }

    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        let w = vb.get(size, "weight")?.to_dtype(DType::F32)?;
        Ok(CenteredRmsNorm {
            scale: (w + 1.0)?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        rms_scaled(x, &self.scale, self.eps)?.to_dtype(x.dtype())
    }

    /// `residual ← residual + delta` (when there is one), then the norm of the result; with
    /// `fused` on a CUDA device, in one kernel that updates `residual` in place (it must be a
    /// buffer of the caller's alone).
    fn add_forward(
        &self,
        residual: &mut Tensor,
        delta: Option<Tensor>,
        fused: bool,
    ) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if fused && residual.device().is_cuda() && residual.is_contiguous() {
            return crate::kernels::norm::add_rms_norm(
                residual,
                delta.as_ref(),
                &self.scale,
                self.eps,
            );
        }
        let _ = fused;
        if let Some(delta) = delta {
            *residual = (&*residual + delta)?;
        }
        self.forward(residual)
    }
}

/// SwiGLU feed-forward.
struct Mlp {
    /// `gate_proj` and `up_proj`.
    gate_up: FusedProjection,
    down: Projection,
}

impl Mlp {
    fn load(vb: VarBuilder, c: &Qwen35Config, lora: Option<&LoraAdapter>) -> Result<Self> {
        Ok(Mlp {
            gate_up: FusedProjection::new(vec![
                Projection::load(c.hidden_size, c.intermediate_size, vb.pp("gate_proj"), lora)?,
                Projection::load(c.hidden_size, c.intermediate_size, vb.pp("up_proj"), lora)?,
            ])?,
            down: Projection::load(c.intermediate_size, c.hidden_size, vb.pp("down_proj"), lora)?,
        })
    }

    fn forward(&self, x: &Tensor, fused: FusedKernels) -> Result<Tensor> {
        // Decoding: the activation straight from the stacked gate/up product, in its kernel.
        #[cfg(feature = "cuda")]
        if fused.mlp
            && fused.gemv
            && let Some(weight) = self.gate_up.stacked_weight()
            && let Some(activated) = crate::kernels::gemv::gemv_swiglu(x, weight)?
        {
            return self.down.project(&activated, true);
        }
        let [gate, up]: [Tensor; 2] = self
            .gate_up
            .forward(x, fused.gemv)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("gate/up projection".into()))?;
        #[cfg(feature = "cuda")]
        if fused.mlp && x.device().is_cuda() {
            return self
                .down
                .project(&crate::kernels::mlp::silu_mul(&gate, &up)?, fused.gemv);
        }
        self.down.project(&gate.silu()?.mul(&up)?, fused.gemv)
    }
}

/// Gated full attention with partial RoPE and a per-head output gate.
struct FullAttention {
    /// `q_proj` (queries and gates), `k_proj`, `v_proj`.
    qkv: FusedProjection,
    o: Projection,
    q_norm: CenteredRmsNorm,
    k_norm: CenteredRmsNorm,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    rotary_dim: usize,
}

impl FullAttention {
    fn load(vb: VarBuilder, c: &Qwen35Config, lora: Option<&LoraAdapter>) -> Result<Self> {
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

    fn forward(
        &self,
        x: &Tensor,
        cache: &mut AttentionCache,
        step: &Step,
        reserve: usize,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let [qg, k, v]: [Tensor; 3] = self
            .qkv
            .forward(x, step.fused.gemv)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("q/k/v projection".into()))?;
        step.lap("attention: q/k/v projection")?;
        #[cfg(feature = "cuda")]
        if t == 1 && step.fused.attention && x.device().is_cuda() {
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
            let (key_cache, value_cache) = cache.make_room((b, kvh, room, hd), x, reserve)?;
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
                return self.o.project(&out, step.fused.gemv);
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
        let (k, v) = cache.append(&k, &v, reserve)?;
        step.lap("attention: norms, RoPE, cache")?;
        self.attend(&q, &k, &v, &gate, step)
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
        // Grouped-query attention without copying keys and values per query head: the `n`
        // query heads sharing one key/value head are stacked along the token axis.
        let n = h / kvh;
        let q = q.reshape((b, kvh, n * t, hd))?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?
            .reshape((b, kvh, n, t, s))?
            .broadcast_add(&step.bias.to_dtype(q.dtype())?.unsqueeze(1)?)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((b, kvh, n * t, s))?;
        let out = probs
            .matmul(v)?
            .reshape((b, h, t, hd))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, h * hd))?;
        step.lap("attention: scores, softmax, values")?;
        let gated = out.mul(&candle_nn::ops::sigmoid(gate)?)?;
        let out = self.o.project(&gated, step.fused.gemv)?;
        step.lap("attention: gate, output projection")?;
        Ok(out)
    }
}

/// Keys and values seen so far by one full-attention layer, in buffers with room to grow
/// (`(B, kv_heads, capacity, head_dim)`; the first `len` positions are filled).
#[derive(Default)]
pub struct AttentionCache {
    pub(super) buffers: Option<(Tensor, Tensor)>,
    pub(super) len: usize,
}

impl AttentionCache {
    /// Moves every row's entries `extra` columns to the right (the new columns on the left are
    /// padding), keeping `room` free columns after them.
    fn pad_left(&mut self, extra: usize, room: usize) -> Result<()> {
        let Some((k, v)) = self.buffers.take() else {
            return Ok(());
        };
        let (b, kvh, _, hd) = k.dims4()?;
        let capacity = self.len + extra + room;
        let shift = |old: &Tensor| -> Result<Tensor> {
            let fresh = Tensor::zeros((b, kvh, capacity, hd), old.dtype(), old.device())?;
            fresh.slice_set(&old.narrow(2, 0, self.len)?.contiguous()?, 2, extra)?;
            Ok(fresh)
        };
        self.buffers = Some((shift(&k)?, shift(&v)?));
        self.len += extra;
        Ok(())
    }

    /// Drops the first `columns` columns of every row (padding for all of them).
    fn trim_left(&mut self, columns: usize, room: usize) -> Result<()> {
        let Some((k, v)) = self.buffers.take() else {
            return Ok(());
        };
        let (b, kvh, _, hd) = k.dims4()?;
        let kept = self.len - columns;
        let cut = |old: &Tensor| -> Result<Tensor> {
            let fresh = Tensor::zeros((b, kvh, kept + room, hd), old.dtype(), old.device())?;
            fresh.slice_set(&old.narrow(2, columns, kept)?.contiguous()?, 2, 0)?;
            Ok(fresh)
        };
        self.buffers = Some((cut(&k)?, cut(&v)?));
        self.len = kept;
        Ok(())
    }

    /// Writes a one-row cache's entries into row `slot`, right-aligned at the current length
    /// (its entries must fit: `other.len ≤ self.len`).
    fn place(&mut self, slot: usize, other: &AttentionCache) -> Result<()> {
        let (Some((k, v)), Some((ok, ov))) = (&self.buffers, &other.buffers) else {
            candle_core::bail!("placing into an empty attention cache");
        };
        let start = self.len - other.len;
        for (dst, src) in [(k, ok), (v, ov)] {
            dst.narrow(0, slot, 1)?.slice_set(
                &src.narrow(2, 0, other.len)?.contiguous()?,
                2,
                start,
            )?;
        }
        Ok(())
    }

    /// Writes the new keys and values after the old ones and returns views of all of them.
    /// The buffers grow geometrically (or to the capacity the [`Cache`] reserved), so a
    /// decoding step copies only its own token.
    fn append(&mut self, k: &Tensor, v: &Tensor, reserve: usize) -> Result<(Tensor, Tensor)> {
        let (b, kvh, t, hd) = k.dims4()?;
        let (kb, vb) = self.make_room((b, kvh, t, hd), k, reserve)?;
        kb.slice_set(k, 2, self.len)?;
        vb.slice_set(v, 2, self.len)?;
        self.len += t;
        self.filled()
    }

    /// The key and value buffers, grown when `t` more columns do not fit (geometrically, or to
    /// the capacity the [`Cache`] reserved); `like` gives the dtype and device.
    fn make_room(
        &mut self,
        (b, kvh, t, hd): (usize, usize, usize, usize),
        like: &Tensor,
        reserve: usize,
    ) -> Result<(Tensor, Tensor)> {
        let needed = self.len + t;
        let capacity = self
            .buffers
            .as_ref()
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0));
        if needed > capacity {
            let grown = needed.max(2 * capacity).max(reserve);
            let fresh = || Tensor::zeros((b, kvh, grown, hd), like.dtype(), like.device());
            let (nk, nv) = (fresh()?, fresh()?);
            if let Some((ok, ov)) = &self.buffers {
                nk.slice_set(&ok.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                nv.slice_set(&ov.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
            }
            self.buffers = Some((nk, nv));
        }
        let (kb, vb) = self.buffers.as_ref().expect("buffers were just made");
        Ok((kb.clone(), vb.clone()))
    }

    /// Views of the filled columns of the key and value buffers.
    fn filled(&self) -> Result<(Tensor, Tensor)> {
        let Some((kb, vb)) = &self.buffers else {
            candle_core::bail!("an empty attention cache has no keys");
        };
        Ok((kb.narrow(2, 0, self.len)?, vb.narrow(2, 0, self.len)?))
    }

    /// Appends another batch's rows (same length and capacity).
    fn extend(&mut self, other: AttentionCache) -> Result<()> {
        if self.len != other.len {
            candle_core::bail!("attention caches of different lengths");
        }
        self.buffers = match (self.buffers.take(), other.buffers) {
            (Some((k, v)), Some((ok, ov))) => {
                Some((Tensor::cat(&[&k, &ok], 0)?, Tensor::cat(&[&v, &ov], 0)?))
            }
            (a, b) => a.or(b),
        };
        Ok(())
    }

    /// Keeps only the batch rows in `rows`.
    fn retain(&mut self, rows: &Tensor) -> Result<()> {
        if let Some((k, v)) = self.buffers.take() {
            self.buffers = Some((k.index_select(rows, 0)?, v.index_select(rows, 0)?));
        }
        Ok(())
    }
}

/// Gated DeltaNet: short causal convolution, then a delta-rule recurrence per value head.
struct GatedDeltaNet {
    /// `in_proj_qkv`, `in_proj_z`, `in_proj_b`, `in_proj_a`.
    input: FusedProjection,
    out: Projection,
    /// Depthwise convolution weights `[channels, kernel]`.
    conv: Tensor,
    /// The same as `(1, kernel, channels)`, for a single-token step.
    conv_window: Tensor,
    /// `−exp(A_log)` per value head (f32).
    neg_a: Tensor,
    dt_bias: Tensor,
    /// The gated norm's weight (plain, not zero-centred), f32.
    norm_weight_f32: Tensor,
    /// [`l2_scale`] of the queries (L2 norm, then `1/√dk`) and of the keys (L2 norm).
    q_scale: Tensor,
    k_scale: Tensor,
    eps: f64,
    key_heads: usize,
    value_heads: usize,
    key_dim: usize,
    value_dim: usize,
    kernel: usize,
}

/// What one DeltaNet layer carries between calls.
#[derive(Default)]
pub struct DeltaNetCache {
    /// The last `kernel − 1` convolution inputs `(B, kernel − 1, channels)`.
    pub(super) conv: Option<Tensor>,
    /// The recurrent state `(B, value_heads, key_dim, value_dim)`, f32.
    pub(super) state: Option<Tensor>,
}

/// Two optional batch tensors stacked along the batch axis.
fn join(a: Option<Tensor>, b: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(Tensor::cat(&[&a, &b], 0)?),
        (a, b) => a.or(b),
    })
}

impl DeltaNetCache {
    /// Writes a one-row cache's convolution history and state into row `slot`.
    fn place(&mut self, slot: usize, other: &DeltaNetCache) -> Result<()> {
        for (dst, src) in [(&self.conv, &other.conv), (&self.state, &other.state)] {
            let (Some(dst), Some(src)) = (dst, src) else {
                candle_core::bail!("placing into an empty DeltaNet cache");
            };
            dst.slice_set(&src.contiguous()?, 0, slot)?;
        }
        Ok(())
    }

    /// Appends another batch's rows.
    fn extend(&mut self, other: DeltaNetCache) -> Result<()> {
        self.conv = join(self.conv.take(), other.conv)?;
        self.state = join(self.state.take(), other.state)?;
        Ok(())
    }

    /// Keeps only the batch rows in `rows`.
    fn retain(&mut self, rows: &Tensor) -> Result<()> {
        if let Some(conv) = self.conv.take() {
            self.conv = Some(conv.index_select(rows, 0)?);
        }
        if let Some(state) = self.state.take() {
            self.state = Some(state.index_select(rows, 0)?);
        }
        Ok(())
    }
}

impl GatedDeltaNet {
    fn load(vb: VarBuilder, c: &Qwen35Config, lora: Option<&LoraAdapter>) -> Result<Self> {
        let (nk, nv, dk, dv) = (
            c.linear_num_key_heads,
            c.linear_num_value_heads,
            c.linear_key_head_dim,
            c.linear_value_head_dim,
        );
        let channels = 2 * nk * dk + nv * dv;
        let conv = vb
            .get((channels, 1, c.linear_conv_kernel_dim), "conv1d.weight")?
            .reshape((channels, c.linear_conv_kernel_dim))?;
        let a_log = vb.get(nv, "A_log")?.to_dtype(DType::F32)?;
        Ok(GatedDeltaNet {
            input: FusedProjection::new(vec![
                Projection::load(c.hidden_size, channels, vb.pp("in_proj_qkv"), lora)?,
                Projection::load(c.hidden_size, nv * dv, vb.pp("in_proj_z"), lora)?,
                Projection::load(c.hidden_size, nv, vb.pp("in_proj_b"), lora)?,
                Projection::load(c.hidden_size, nv, vb.pp("in_proj_a"), lora)?,
            ])?,
            out: Projection::load(nv * dv, c.hidden_size, vb.pp("out_proj"), lora)?,
            conv_window: conv.t()?.unsqueeze(0)?.contiguous()?,
            conv,
            neg_a: a_log.exp()?.neg()?,
            dt_bias: vb.get(nv, "dt_bias")?.to_dtype(DType::F32)?,
            norm_weight_f32: vb.get(dv, "norm.weight")?.to_dtype(DType::F32)?,
            q_scale: l2_scale(dk, 1.0 / (dk as f64).sqrt(), vb.device())?,
            k_scale: l2_scale(dk, 1.0, vb.device())?,
            eps: c.rms_norm_eps,
            key_heads: nk,
            value_heads: nv,
            key_dim: dk,
            value_dim: dv,
            kernel: c.linear_conv_kernel_dim,
        })
    }

    /// `silu(causal depthwise conv(x))` with the cached history; updates the cache. With
    /// `kernel` on a CUDA device, a prefill (several tokens) runs in one kernel.
    fn convolve(&self, x: &Tensor, cache: &mut DeltaNetCache, kernel: bool) -> Result<Tensor> {
        let (b, t, ch) = x.dims3()?;
        let history = match cache.conv.take() {
            Some(h) => h,
            None => Tensor::zeros((b, self.kernel - 1, ch), x.dtype(), x.device())?,
        };
        #[cfg(feature = "cuda")]
        if kernel && t > 1 && x.device().is_cuda() {
            let out = crate::kernels::deltanet::conv_prefill(x, &history, &self.conv)?;
            let keep = self.kernel - 1;
            cache.conv = Some(if t >= keep {
                x.narrow(1, t - keep, keep)?.contiguous()?
            } else {
                Tensor::cat(&[&history, &x.contiguous()?], 1)?
                    .narrow(1, t, keep)?
                    .contiguous()?
            });
            return Ok(out);
        }
        let _ = kernel;
        let padded = Tensor::cat(&[&history, x], 1)?;
        cache.conv = Some(padded.narrow(1, t, self.kernel - 1)?.contiguous()?);
        if t == 1 {
            // One decoding step: the window is the whole padded input.
            return padded
                .broadcast_mul(&self.conv_window)?
                .sum_keepdim(1)?
                .silu();
        }
        let mut out = Tensor::zeros((b, t, ch), x.dtype(), x.device())?;
        for j in 0..self.kernel {
            let w = self.conv.narrow(1, j, 1)?.reshape((1, 1, ch))?;
            out = (out + padded.narrow(1, j, t)?.broadcast_mul(&w)?)?;
        }
        out.silu()
    }

    /// One decoding step in lamar's fused CUDA kernels (`crate::kernels::deltanet`): the
    /// gated, normed output `(B, 1, nv·dv)` before `out_proj`, or `None` when the cache has no
    /// history yet (the first call goes through the candle operations).
    #[cfg(feature = "cuda")]
    fn decode_fused(
        &self,
        [qkv, z, beta, a]: [&Tensor; 4],
        cache: &mut DeltaNetCache,
    ) -> Result<Option<Tensor>> {
        use crate::kernels::deltanet::{DeltaNetDecode, deltanet_decode};
        let (Some(history), Some(state)) = (cache.conv.take(), cache.state.take()) else {
            return Ok(None);
        };
        // Both are overwritten in place: they must be contiguous buffers of this cache alone
        // (they are: prefill and the cache operations make fresh ones).
        let (history, state) = (history.contiguous()?, state.contiguous()?);
        let out = deltanet_decode(&DeltaNetDecode {
            qkv,
            z,
            beta,
            a,
            conv_weight: &self.conv,
            conv_history: &history,
            state: &state,
            neg_a: &self.neg_a,
            dt_bias: &self.dt_bias,
            norm_weight: &self.norm_weight_f32,
            key_heads: self.key_heads,
            value_heads: self.value_heads,
            key_dim: self.key_dim,
            value_dim: self.value_dim,
            eps: self.eps,
        });
        cache.conv = Some(history);
        cache.state = Some(state);
        out.map(Some)
    }

    /// The gated delta rule of a call, from the convolution's output `mixed` `(B, T, channels)`
    /// and the `b`/`a` projections `(B, T, nv)`: the outputs `(B, nv, T, dv)` (f32) and the new
    /// state. A prefill with the `chunks` kernels on CUDA runs in two kernels
    /// (`kernels::deltanet_chunks`); otherwise candle operations make the normed queries and
    /// keys, the gates and decays, and run the recurrent (one token) or chunked form.
    fn delta_rule(
        &self,
        mixed: &Tensor,
        beta_in: &Tensor,
        a_in: &Tensor,
        state: Tensor,
        step: &Step,
    ) -> Result<(Tensor, Tensor)> {
        let (b, t, _) = mixed.dims3()?;
        let (nk, nv, dk, dv) = (
            self.key_heads,
            self.value_heads,
            self.key_dim,
            self.value_dim,
        );
        #[cfg(feature = "cuda")]
        if t > 1
            && step.fused.chunks
            && mixed.device().is_cuda()
            && let Some(chunks) = Chunks::prepare_fused(
                &crate::kernels::deltanet_chunks::ChunkInputs {
                    mixed,
                    beta: beta_in,
                    a: a_in,
                    neg_a: &self.neg_a,
                    dt_bias: &self.dt_bias,
                    key_heads: nk,
                    value_heads: nv,
                },
                dk,
                dv,
            )?
        {
            step.lap("deltanet: chunks, state-free part")?;
            let out = chunks.carry(state, true)?;
            step.lap("deltanet: delta rule (recurrent or chunk pass)")?;
            return Ok(out);
        }
        let f32 = |x: Tensor| x.to_dtype(DType::F32);
        // Each query/key head serves `nv / nk` consecutive value heads.
        let widen = |x: Tensor| -> Result<Tensor> {
            let n = nv / nk;
            x.unsqueeze(3)?
                .broadcast_as((b, t, nk, n, dk))?
                .contiguous()?
                .reshape((b, t, nv, dk))
        };
        let mixed = f32(mixed.clone())?;
        let q = mixed
            .narrow(D::Minus1, 0, nk * dk)?
            .reshape((b, t, nk, dk))?;
        let k = mixed
            .narrow(D::Minus1, nk * dk, nk * dk)?
            .reshape((b, t, nk, dk))?;
        let v = mixed
            .narrow(D::Minus1, 2 * nk * dk, nv * dv)?
            .reshape((b, t, nv, dv))?;
        let q = widen(l2_normalised(&q, &self.q_scale)?)?;
        let k = widen(l2_normalised(&k, &self.k_scale)?)?;
        let beta = candle_nn::ops::sigmoid(&f32(beta_in.clone())?)?; // (B, T, nv)
        let a = f32(a_in.clone())?.broadcast_add(&self.dt_bias)?;
        // softplus(a) = max(a, 0) + ln(1 + e^{−|a|})
        let softplus = (a.relu()? + (a.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
        let g = softplus.broadcast_mul(&self.neg_a)?; // log-decay ≤ 0, (B, T, nv)
        // Heads first: (B, nv, T, d).
        let heads = |x: &Tensor| x.transpose(1, 2)?.contiguous();
        let (q, k, v) = (heads(&q)?, heads(&k)?, heads(&v)?);
        let (beta, g) = (heads(&beta)?, heads(&g)?);
        // Decoding steps use the recurrence, longer inputs (prefill) the chunked form.
        step.lap("deltanet: norms, gates, layout")?;
        let (o, state) = if t == 1 {
            delta_rule_recurrent(&q, &k, &v, &beta, &g, state)?
        } else {
            let chunks = Chunks::prepare(&q, &k, &v, &beta, &g)?;
            step.lap("deltanet: chunks, state-free part")?;
            chunks.carry(state, step.fused.chunks)?
        };
        step.lap("deltanet: delta rule (recurrent or chunk pass)")?;
        Ok((o, state))
    }

    fn forward(&self, x: &Tensor, cache: &mut DeltaNetCache, step: &Step) -> Result<Tensor> {
        // Padding contributes nothing: zero inputs give zero keys (no state writes) and zero
        // convolution inputs.
        let x = &match &step.mask {
            Some(mask) => x.broadcast_mul(&mask.unsqueeze(2)?.to_dtype(x.dtype())?)?,
            None => x.clone(),
        };
        let b = x.dim(0)?;
        let (nv, dk, dv) = (self.value_heads, self.key_dim, self.value_dim);
        let [qkv, z, beta_in, a_in]: [Tensor; 4] = self
            .input
            .forward(x, step.fused.gemv)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("DeltaNet input projection".into()))?;
        step.lap("deltanet: input projection")?;
        #[cfg(feature = "cuda")]
        if x.dim(1)? == 1
            && step.fused.deltanet
            && step.mask.is_none()
            && x.device().is_cuda()
            && let Some(out) = self.decode_fused([&qkv, &z, &beta_in, &a_in], cache)?
        {
            return self.out.project(&out, step.fused.gemv);
        }
        let mixed = self.convolve(&qkv, cache, step.fused.deltanet)?;
        step.lap("deltanet: convolution")?;
        let state = match cache.state.take() {
            Some(s) => s,
            None => Tensor::zeros((b, nv, dk, dv), DType::F32, x.device())?,
        };
        let (o, state) = self.delta_rule(&mixed, &beta_in, &a_in, state, step)?;
        cache.state = Some(state);
        let o = o.transpose(1, 2)?.contiguous()?; // (B, T, nv, dv), f32
        let gated = self.gated_norm(&o, &z, step.fused.deltanet)?;
        step.lap("deltanet: gated norm")?;
        let out = self.out.project(&gated, step.fused.gemv)?;
        step.lap("deltanet: output projection")?;
        Ok(out)
    }

    /// `round(round(rms(o) · weight) · silu(z))` per value head, for the outputs `o`
    /// `(B, T, nv, dv)` (f32) and the gate `z` `(B, T, nv·dv)`: `(B, T, nv·dv)` in the model's
    /// dtype. With `kernel` on a CUDA device, one kernel.
    fn gated_norm(&self, o: &Tensor, z: &Tensor, kernel: bool) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if kernel
            && o.device().is_cuda()
            && let Some(gated) =
                crate::kernels::deltanet::gated_norm(o, z, &self.norm_weight_f32, self.eps)?
        {
            return Ok(gated);
        }
        let _ = kernel;
        let (b, t, nv, dv) = o.dims4()?;
        let dtype = z.dtype();
        let z = z
            .contiguous()?
            .reshape((b, t, nv, dv))?
            .to_dtype(DType::F32)?;
        let normed = rms_scaled(o, &self.norm_weight_f32, self.eps)?.to_dtype(dtype)?;
        normed
            .to_dtype(DType::F32)?
            .mul(&z.silu()?)?
            .to_dtype(dtype)?
            .reshape((b, t, nv * dv))
    }
}

enum Mixer {
    Attention(FullAttention),
    DeltaNet(GatedDeltaNet),
}

struct DecoderLayer {
    mixer: Mixer,
    input_norm: CenteredRmsNorm,
    post_norm: CenteredRmsNorm,
    mlp: Mlp,
}

/// One layer's cache.
pub enum LayerCache {
    /// A full-attention layer's keys and values.
    Attention(AttentionCache),
    /// A DeltaNet layer's convolution history and recurrent state.
    DeltaNet(DeltaNetCache),
}

/// Everything a batch of sequences carries from one forward call to the next.
pub struct Cache {
    pub(super) layers: Vec<LayerCache>,
    /// Tokens (padding included) seen so far.
    pub position: usize,
    /// Key/value capacity to allocate up front (tokens); the buffers grow past it if needed.
    pub(super) reserve: usize,
    /// Which of the tokens seen so far are real (1) or padding (0), `(B, position)` f32.
    pub(super) seen: Option<Tensor>,
    /// Real tokens seen so far per sequence: the next real token's position. Kept on the host
    /// so that positions never need a device round trip.
    pub(super) next_position: Vec<u32>,
    /// Bumped by every change a decoding graph cannot know about (any eager forward call, rows
    /// admitted, added, dropped or trimmed), so that a graph captured before is not replayed
    /// on a cache whose padding pattern it no longer matches ([`super::graph`]).
    pub(super) revision: u64,
}

impl Cache {
    /// Reserves key/value room for `tokens` positions (prompt + new tokens), so that the
    /// attention buffers are allocated once.
    pub fn reserve(&mut self, tokens: usize) {
        self.reserve = tokens;
    }

    /// Sequences in the batch (0 before the first call).
    pub fn batch_size(&self) -> usize {
        self.next_position.len()
    }

    /// Joins caches of batches that have seen the same number of positions (for example,
    /// groups of rows of one left-padded batch prefilled separately) into one batch.
    pub fn concat(parts: Vec<Cache>) -> Result<Cache> {
        let mut parts = parts.into_iter();
        let Some(mut whole) = parts.next() else {
            candle_core::bail!("no caches to join");
        };
        for part in parts {
            if part.position != whole.position || part.layers.len() != whole.layers.len() {
                candle_core::bail!("only caches at the same position can be joined");
            }
            for (w, p) in whole.layers.iter_mut().zip(part.layers) {
                match (w, p) {
                    (LayerCache::Attention(w), LayerCache::Attention(p)) => w.extend(p)?,
                    (LayerCache::DeltaNet(w), LayerCache::DeltaNet(p)) => w.extend(p)?,
                    _ => candle_core::bail!("the caches belong to different models"),
                }
            }
            whole.seen = join(whole.seen.take(), part.seen)?;
            whole.next_position.extend(part.next_position);
        }
        whole.revision += 1;
        Ok(whole)
    }

    /// Puts a one-sequence cache (a prompt prefilled alone) into batch row `slot`, replacing
    /// what was there: its entries end at the batch's current column, earlier columns of the
    /// row become padding. When the prompt is longer than the batch's history, every row is
    /// first shifted right (left padding added); `room` is the key/value space to keep free
    /// after the current column.
    pub fn admit(&mut self, slot: usize, one: &Cache, room: usize) -> Result<()> {
        self.revision += 1;
        if one.next_position.len() != 1 || slot >= self.next_position.len() {
            candle_core::bail!("admit takes a one-sequence cache and a row of this batch");
        }
        let (Some(seen), Some(one_seen)) = (self.seen.take(), one.seen.as_ref()) else {
            candle_core::bail!("admit needs caches that have seen tokens");
        };
        let (b, width) = seen.dims2()?;
        let needed = one_seen.dim(1)?;
        let mut seen = seen;
        if needed > width {
            let extra = needed - width;
            for layer in &mut self.layers {
                if let LayerCache::Attention(c) = layer {
                    c.pad_left(extra, room)?;
                }
            }
            let zeros = Tensor::zeros((b, extra), DType::F32, seen.device())?;
            seen = Tensor::cat(&[&zeros, &seen], 1)?;
            self.position += extra;
        }
        let width = seen.dim(1)?;
        for (mine, theirs) in self.layers.iter_mut().zip(&one.layers) {
            match (mine, theirs) {
                (LayerCache::Attention(m), LayerCache::Attention(t)) => m.place(slot, t)?,
                (LayerCache::DeltaNet(m), LayerCache::DeltaNet(t)) => m.place(slot, t)?,
                _ => candle_core::bail!("the caches belong to different models"),
            }
        }
        let row = Tensor::cat(
            &[
                &Tensor::zeros((1, width - needed), DType::F32, seen.device())?,
                one_seen,
            ],
            1,
        )?;
        seen.slice_set(&row, 0, slot)?;
        self.seen = Some(seen);
        self.next_position[slot] = one.next_position[0];
        Ok(())
    }

    /// Adds a row that is padding everywhere (zero state), for [`Cache::admit`] to fill.
    pub fn push_empty_row(&mut self) -> Result<()> {
        self.revision += 1;
        let zero_row = |t: &Tensor| -> Result<Tensor> {
            let mut dims = t.dims().to_vec();
            dims[0] = 1;
            Tensor::cat(&[t, &Tensor::zeros(dims, t.dtype(), t.device())?], 0)
        };
        for layer in &mut self.layers {
            match layer {
                LayerCache::Attention(c) => {
                    if let Some((k, v)) = c.buffers.take() {
                        c.buffers = Some((zero_row(&k)?, zero_row(&v)?));
                    }
                }
                LayerCache::DeltaNet(c) => {
                    c.conv = c.conv.take().map(|t| zero_row(&t)).transpose()?;
                    c.state = c.state.take().map(|t| zero_row(&t)).transpose()?;
                }
            }
        }
        self.seen = self.seen.take().map(|t| zero_row(&t)).transpose()?;
        self.next_position.push(0);
        Ok(())
    }

    /// Drops the leading columns that are padding in every row, when they are at least a
    /// quarter of the history (so a long-running batch does not attend over ever more
    /// padding); `room` is the key/value space to keep free. Returns the columns dropped.
    pub fn trim_padding(&mut self, room: usize) -> Result<usize> {
        self.revision += 1;
        let Some(seen) = self.seen.take() else {
            return Ok(0);
        };
        let width = seen.dim(1)?;
        let used: Vec<f32> = seen.max(0)?.to_vec1()?;
        let first = used.iter().position(|&u| u > 0.0).unwrap_or(width);
        if first == 0 || first * 4 < width {
            self.seen = Some(seen);
            return Ok(0);
        }
        for layer in &mut self.layers {
            if let LayerCache::Attention(c) = layer {
                c.trim_left(first, room)?;
            }
        }
        self.seen = Some(seen.narrow(1, first, width - first)?.contiguous()?);
        self.position -= first;
        Ok(first)
    }

    /// Keeps only the sequences at batch rows `rows` (in that order), dropping the others'
    /// state: a batch shrinks as its sequences finish.
    pub fn retain(&mut self, rows: &[usize]) -> Result<()> {
        self.revision += 1;
        if self.next_position.is_empty() {
            return Ok(());
        }
        if rows.iter().any(|&r| r >= self.next_position.len()) {
            candle_core::bail!("row out of range when shrinking the batch");
        }
        let device = match &self.seen {
            Some(seen) => seen.device().clone(),
            None => return Ok(()),
        };
        let index: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let index = Tensor::from_vec(index, rows.len(), &device)?;
        for layer in &mut self.layers {
            match layer {
                LayerCache::Attention(c) => c.retain(&index)?,
                LayerCache::DeltaNet(c) => c.retain(&index)?,
            }
        }
        if let Some(seen) = self.seen.take() {
            self.seen = Some(seen.index_select(&index, 0)?);
        }
        self.next_position = rows.iter().map(|&r| self.next_position[r]).collect();
        Ok(())
    }
}

/// What every layer needs for one forward call: rotary angles per token, the attention bias
/// (causal and padding), the padding mask of the new tokens.
pub(super) struct Step {
    /// Each token's position `(B, T)`, f32.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(super) positions: Tensor,
    /// The model's RoPE inverse frequencies (`rotary_dim / 2`), f32.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(super) inv_freq: Tensor,
    /// `(B, 1, T, rotary_dim)`.
    pub(super) cos: Tensor,
    pub(super) sin: Tensor,
    /// `(B, 1, T, S)`: 0 where a query may look, −∞ (future) or −1e30 (padding) elsewhere.
    pub(super) bias: Tensor,
    /// `(B, T)` 1 for real tokens, 0 for padding; `None` when there is no padding.
    pub(super) mask: Option<Tensor>,
    /// In a CUDA graph's capture ([`super::graph`]): the `(2)` u32 buffer `[column, length]`
    /// the replays upload before each step; the attention layers read the key/value column and
    /// length from it (and `bias` is the graph's `(B, 1, 1, capacity)` buffer) instead of the
    /// cache's host-side length, which a capture leaves unchanged.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(super) graph: Option<Tensor>,
    /// Which of lamar's fused CUDA kernels layers may use ([`Qwen35Model::set_fused_kernels`]).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(super) fused: FusedKernels,
    /// Times stages when profiling ([`Qwen35Model::set_stopwatch`]; never inside a graph
    /// capture, where waiting for the device is not allowed).
    pub(super) stopwatch: Option<Arc<Stopwatch>>,
}

impl Step {
    /// Ends stage `name` on the stopwatch, if there is one.
    fn lap(&self, name: &'static str) -> Result<()> {
        Stopwatch::lap_on(self.stopwatch.as_deref(), name)
    }
}

/// The text model with its LM head.
pub struct Qwen35Model {
    pub(super) embed: Embedding,
    layers: Vec<DecoderLayer>,
    pub(super) norm: CenteredRmsNorm,
    pub(super) lm_head: Linear,
    /// RoPE inverse frequencies `(1, 1, rotary_dim / 2)`, f32.
    pub(super) inv_freq: Tensor,
    config: Qwen35Config,
    pub(super) fused: FusedKernels,
    cuda_graphs: bool,
    stopwatch: Option<Arc<Stopwatch>>,
}

/// Which of lamar's fused CUDA kernels ([`crate::kernels`]) the model uses on a CUDA device
/// (all by default). Off, a step runs as candle operations, as on the CPU: the reference the
/// GPU bench compares with. Without the `cuda` feature there are none and this changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FusedKernels {
    /// A DeltaNet layer's decoding step, and its convolution and gated norm in prefill
    /// (`kernels::deltanet`).
    pub deltanet: bool,
    /// The start of a full-attention decoding step (`kernels::attention`).
    pub attention: bool,
    /// Residual addition + RMSNorm (`kernels::norm`).
    pub norm: bool,
    /// The MLP's activation (`kernels::mlp`; when decoding with `gemv`, computed by the gate/up
    /// product's kernel, `kernels::gemv::gemv_swiglu`).
    pub mlp: bool,
    /// Projections of up to 8 rows (decoding; `kernels::gemv`).
    pub gemv: bool,
    /// A DeltaNet layer's prefill: the chunked rule's state-free part and its pass over
    /// chunks (`kernels::deltanet_chunks`).
    pub chunks: bool,
}

impl FusedKernels {
    /// Every fused kernel.
    pub const ALL: FusedKernels = FusedKernels {
        deltanet: true,
        attention: true,
        norm: true,
        mlp: true,
        gemv: true,
        chunks: true,
    };
    /// None: candle operations only.
    pub const NONE: FusedKernels = FusedKernels {
        deltanet: false,
        attention: false,
        norm: false,
        mlp: false,
        gemv: false,
        chunks: false,
    };

    /// Parses `all`, `none` or a comma-separated list of `deltanet`, `attention`, `norm`,
    /// `mlp`, `gemv`, `chunks`.
    pub fn parse(text: &str) -> std::result::Result<FusedKernels, String> {
        match text {
            "all" => return Ok(FusedKernels::ALL),
            "none" => return Ok(FusedKernels::NONE),
            _ => {}
        }
        let mut fused = FusedKernels::NONE;
        for name in text.split(',') {
            match name.trim() {
                "deltanet" => fused.deltanet = true,
                "attention" => fused.attention = true,
                "norm" => fused.norm = true,
                "mlp" => fused.mlp = true,
                "gemv" => fused.gemv = true,
                "chunks" => fused.chunks = true,
                other => {
                    return Err(format!(
                        "unknown fused kernel {other:?} (all, none, or a list of deltanet, \
                         attention, norm, mlp, gemv, chunks)"
                    ));
                }
            }
        }
        Ok(fused)
    }
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
            let vb = text.pp(format!("layers.{i}"));
            let mixer = match kind {
                LayerType::FullAttention => {
                    Mixer::Attention(FullAttention::load(vb.pp("self_attn"), config, lora)?)
                }
                LayerType::LinearAttention => {
                    Mixer::DeltaNet(GatedDeltaNet::load(vb.pp("linear_attn"), config, lora)?)
                }
            };
            layers.push(DecoderLayer {
                mixer,
                input_norm: CenteredRmsNorm::load(
                    vb.pp("input_layernorm"),
                    config.hidden_size,
                    config.rms_norm_eps,
                )?,
                post_norm: CenteredRmsNorm::load(
                    vb.pp("post_attention_layernorm"),
                    config.hidden_size,
                    config.rms_norm_eps,
                )?,
                mlp: Mlp::load(vb.pp("mlp"), config, lora)?,
            });
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
            stopwatch: None,
        })
    }

    /// Turns CUDA graphs for decoding steps on (the default) or off ([`super::graph`]; they
    /// need every fused kernel, and change nothing on the CPU).
    pub fn set_cuda_graphs(&mut self, on: bool) {
        self.cuda_graphs = on;
    }

    /// A [`GraphSlot`] for one generation, capturing graphs when they are turned on.
    pub fn graph_slot(&self) -> GraphSlot {
        GraphSlot::new(self.cuda_graphs)
    }

    /// Times every later forward call's stages on `watch` (or stops timing with `None`):
    /// see [`Stopwatch`]. Decoding steps through CUDA graphs are not timed.
    pub fn set_stopwatch(&mut self, watch: Option<Arc<Stopwatch>>) {
        self.stopwatch = watch;
    }

    /// Chooses which of lamar's fused CUDA kernels run ([`FusedKernels`]; all by default).
    pub fn set_fused_kernels(&mut self, fused: FusedKernels) {
        self.fused = fused;
    }

    /// Whether every layer can run inside a CUDA graph's decoding step: all fused kernels on,
    /// and attention sizes the decoding attention kernel handles.
    #[cfg(feature = "cuda")]
    pub(super) fn graphable(&self) -> bool {
        // The prefill kernels (`chunks`) do not matter to a decoding step.
        let decoding = FusedKernels {
            chunks: self.fused.chunks,
            ..FusedKernels::ALL
        };
        self.fused == decoding
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
            layers: self
                .layers
                .iter()
                .map(|l| match l.mixer {
                    Mixer::Attention(_) => LayerCache::Attention(AttentionCache::default()),
                    Mixer::DeltaNet(_) => LayerCache::DeltaNet(DeltaNetCache::default()),
                })
                .collect(),
            position: 0,
            reserve: 0,
            seen: None,
            next_position: Vec::new(),
            revision: 0,
        }
    }

    /// The rotary angles, attention bias and mask of one call, updating the cache's record of
    /// real and padding tokens.
    fn step(&self, mask: Option<&Tensor>, b: usize, t: usize, cache: &mut Cache) -> Result<Step> {
        let device = self.embed.embeddings().device();
        let mask_f = match mask {
            Some(m) => m.to_dtype(DType::F32)?,
            None => Tensor::ones((b, t), DType::F32, device)?,
        };
        if cache.next_position.is_empty() {
            cache.next_position = vec![0; b];
        } else if cache.next_position.len() != b {
            candle_core::bail!(
                "the cache holds {} sequences but the input has {b}",
                cache.next_position.len()
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
        for (row, next) in flags.iter().zip(cache.next_position.iter_mut()) {
            for &flag in row {
                positions.push(if flag == 0 { 0.0 } else { *next as f32 });
                *next += u32::from(flag != 0);
            }
        }
        let positions = Tensor::from_vec(positions, (b, t), device)?;
        let seen = match cache.seen.take() {
            Some(prev) => Tensor::cat(&[&prev, &mask_f], 1)?,
            None => mask_f.clone(),
        };
        cache.seen = Some(seen.clone());
        let s = seen.dim(1)?;
        let offset = s - t;
        let freqs = positions.unsqueeze(2)?.broadcast_mul(&self.inv_freq)?; // (B, T, rd/2)
        let emb = Tensor::cat(&[&freqs, &freqs], 2)?.unsqueeze(1)?;
        // Padding keys: a large finite penalty, so that a padding query (which sees only
        // padding) still gets a finite softmax.
        let padding = ((seen - 1.0)? * 1e30)?.reshape((b, 1, 1, s))?;
        let bias = if t == 1 {
            padding // a single new token may look at everything before it
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
            mask: mask.map(|_| mask_f),
            fused: self.fused,
            graph: None,
            stopwatch: self.stopwatch.clone(),
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
        let step = self.step(mask, b, t, cache)?;
        step.lap("positions, masks, rotary angles")?;
        let h = self.run_layers(input_ids, &step, cache)?;
        cache.position += t;
        cache.revision += 1;
        Ok(h)
    }

    /// The embedding and every layer for one call described by `step`: the last layer's hidden
    /// states `(B, T, hidden)`, before the final norm. Leaves `cache.position` to the caller.
    pub(super) fn run_layers(
        &self,
        input_ids: &Tensor,
        step: &Step,
        cache: &mut Cache,
    ) -> Result<Tensor> {
        let mut h = self.embed.forward(input_ids)?;
        step.lap("embedding")?;
        let reserve = cache.reserve;
        // Each residual addition is done by the norm that follows it (one kernel on CUDA).
        let mut pending: Option<Tensor> = None;
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let normed = layer
                .input_norm
                .add_forward(&mut h, pending.take(), step.fused.norm)?;
            step.lap("residual + norm")?;
            let mixed = match (&layer.mixer, layer_cache) {
                (Mixer::Attention(a), LayerCache::Attention(c)) => {
                    a.forward(&normed, c, step, reserve)?
                }
                (Mixer::DeltaNet(d), LayerCache::DeltaNet(c)) => d.forward(&normed, c, step)?,
                _ => candle_core::bail!("the cache was made for another model"),
            };
            let normed = layer
                .post_norm
                .add_forward(&mut h, Some(mixed), step.fused.norm)?;
            step.lap("residual + norm")?;
            pending = Some(layer.mlp.forward(&normed, step.fused)?);
            step.lap("mlp")?;
        }
        if let Some(last) = pending {
            h = (h + last)?;
        }
        Ok(h)
    }

    /// Greedy decoding of one prompt: the new tokens (at most `max_new_tokens`, ending early
    /// after `stop`).
    pub fn greedy(
        &self,
        prompt: &[u32],
        max_new_tokens: usize,
        stop: Option<u32>,
        device: &Device,
    ) -> Result<Vec<u32>> {
        let stops: Vec<u32> = stop.into_iter().collect();
        let mut sampler = Sampler::new(SamplingParams::default());
        let out = self.generate(
            &[prompt.to_vec()],
            max_new_tokens,
            &stops,
            &mut sampler,
            device,
        )?;
        Ok(out.into_iter().next().map(|g| g.tokens).unwrap_or_default())
    }

    /// Generates for a batch of prompts at once: the prompts are left-padded to one length,
    /// prefilled in groups of rows (at most [`PREFILL_TOKENS`] tokens a call, to bound memory),
    /// and decoded together; each sequence stops after `max_new_tokens` tokens or a `stop`
    /// token (which is kept), and leaves the batch then, so the batch shrinks as sequences
    /// finish. With greedy decoding every sequence gets exactly what it would get alone.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        max_new_tokens: usize,
        stop: &[u32],
        sampler: &mut Sampler,
        device: &Device,
    ) -> Result<Vec<Generation>> {
        let limits = vec![max_new_tokens; prompts.len()];
        let decoding = Decoding {
            stop,
            ..Decoding::default()
        };
        self.generate_each(prompts, &limits, &decoding, sampler, device, |_| {})
    }

    /// [`Qwen35Model::generate`] with a limit of new tokens per prompt; `progress` is called
    /// after every decoding step with the number of tokens that step produced.
    pub fn generate_each(
        &self,
        prompts: &[Vec<u32>],
        limits: &[usize],
        decoding: &Decoding,
        sampler: &mut Sampler,
        device: &Device,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Generation>> {
        let b = prompts.len();
        if limits.len() != b {
            candle_core::bail!("{b} prompts but {} token limits", limits.len());
        }
        let mut out: Vec<Generation> = vec![Generation::default(); b];
        // Rows still generating, as indices into `prompts`.
        let mut active: Vec<usize> = (0..b).filter(|&k| limits[k] > 0).collect();
        if active.is_empty() {
            return Ok(out);
        }
        if prompts.iter().any(Vec::is_empty) {
            candle_core::bail!("every prompt needs at least one token");
        }
        let width = active.iter().map(|&k| prompts[k].len()).max().unwrap_or(0);
        let longest = active.iter().map(|&k| limits[k]).max().unwrap_or(0);
        let rows_per_call = (decoding.prefill_tokens / width).max(1);
        let stop = decoding.stop;
        let mut parts = Vec::new();
        let mut logits = Vec::new();
        for group in active.chunks(rows_per_call) {
            let (mut ids, mut mask) = (Vec::new(), Vec::new());
            for &k in group {
                let p = &prompts[k];
                let pad = width - p.len();
                ids.extend(std::iter::repeat_n(0u32, pad).chain(p.iter().copied()));
                mask.extend(std::iter::repeat_n(0u8, pad).chain(std::iter::repeat_n(1u8, p.len())));
            }
            let ids = Tensor::from_vec(ids, (group.len(), width), device)?;
            let mask = Tensor::from_vec(mask, (group.len(), width), device)?;
            let mut cache = self.new_cache();
            // Room for the last greedy graph's steps past the longest limit.
            cache.reserve(width + longest + GREEDY_STEPS);
            logits.push(self.forward_last(&ids, Some(&mask), &mut cache)?);
            parts.push(cache);
        }
        let mut cache = Cache::concat(parts)?;
        let logits = Tensor::cat(&logits, 0)?;
        let mut graphs = self.graph_slot();
        // Steps already computed for the current rows (several at a time for greedy decoding:
        // `decode_greedy_graphed`), oldest first.
        let mut picks = VecDeque::from([sampler.next(&logits)?]);
        while let Some((tokens, log_probs)) = picks.pop_front() {
            let mut keep = Vec::with_capacity(active.len());
            for (row, &k) in active.iter().enumerate() {
                if out[k].push(tokens[row], log_probs[row], stop, limits[k]) {
                    keep.push(row);
                }
            }
            progress(active.len());
            if keep.is_empty() {
                break;
            }
            let next: Vec<u32> = keep.iter().map(|&row| tokens[row]).collect();
            if keep.len() < active.len() {
                // The cache (and the steps computed ahead) hold every row: keep the kept ones.
                cache.retain(&keep)?;
                active = keep.iter().map(|&row| active[row]).collect();
                for (tokens, log_probs) in picks.iter_mut() {
                    *tokens = keep.iter().map(|&row| tokens[row]).collect();
                    *log_probs = keep.iter().map(|&row| log_probs[row]).collect();
                }
            }
            if picks.is_empty() {
                picks.extend(self.decode_picks(&next, &mut cache, &mut graphs, sampler)?);
            }
        }
        Ok(out)
    }
}

/// Most prompt tokens (rows × padded length) one prefill call processes by default; longer
/// batches are prefilled a few rows at a time.
pub const PREFILL_TOKENS: usize = 16_384;

/// How [`Qwen35Model::generate_each`] decodes.
#[derive(Debug, Clone, Copy)]
pub struct Decoding<'a> {
    /// Tokens that end a sequence (kept in its output), e.g. `<|im_end|>`.
    pub stop: &'a [u32],
    /// Most prompt tokens (rows × padded length) per prefill call.
    pub prefill_tokens: usize,
}

impl Default for Decoding<'_> {
    fn default() -> Self {
        Decoding {
            stop: &[],
            prefill_tokens: PREFILL_TOKENS,
        }
    }
}

/// What [`Qwen35Model::generate`] produced for one prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generation {
    /// New tokens (the stop token included when one was produced).
    pub tokens: Vec<u32>,
    /// Log-probability of each under the model (temperature 1, untruncated).
    pub log_probs: Vec<f32>,
}

impl Generation {
    /// Records a drawn token and its log-probability; true when the sequence goes on (the
    /// token is not in `stop` and fewer than `limit` tokens were made).
    pub fn push(&mut self, token: u32, log_prob: f32, stop: &[u32], limit: usize) -> bool {
        self.tokens.push(token);
        self.log_probs.push(log_prob);
        !stop.contains(&token) && self.tokens.len() < limit
    }

    /// Mean negative log-likelihood of the generated tokens (LAMAR's pseudo-label "entropy").
    pub fn mean_nll(&self) -> f64 {
        if self.log_probs.is_empty() {
            return 0.0;
        }
        -self.log_probs.iter().map(|&x| f64::from(x)).sum::<f64>() / self.log_probs.len() as f64
    }
}
