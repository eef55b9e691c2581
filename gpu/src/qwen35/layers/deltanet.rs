//! Gated DeltaNet: one stacked input projection (q/k/v channels, output gate, β, decay), a
//! short causal depthwise convolution, the gated delta rule per value head (chunked for
//! several tokens, recurrent for one), a gated RMSNorm and the output projection.

use super::norm::{l2_scale, rms_scaled};
use crate::lora::{FusedProjection, LoraAdapter, Projection};
use crate::qwen35::cache::DeltaNetCache;
use crate::qwen35::config::Qwen35Config;
use crate::qwen35::delta_rule::{Chunks, delta_rule_recurrent};
use crate::qwen35::step::Step;
use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

/// Gated DeltaNet: short causal convolution, then a delta-rule recurrence per value head.
pub(crate) struct GatedDeltaNet {
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

impl GatedDeltaNet {
    /// Reads the layer's projections, convolution, decay, bias and norm weights under `vb`.
    pub(crate) fn load(
        vb: VarBuilder,
        c: &Qwen35Config,
        lora: Option<&LoraAdapter>,
    ) -> Result<Self> {
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

    /// The layer's projections: module path and `(in, out)` features.
    pub(crate) fn projections(&self) -> Result<Vec<(String, usize, usize)>> {
        let mut out = self.input.parts()?;
        let (input, output) = self.out.dims()?;
        out.push((self.out.path().to_string(), input, output));
        Ok(out)
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
        if kernel
            && t > 1
            && let Some(out) = crate::train::conv::causal_conv_silu(x, &history, &self.conv)?
        {
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
    /// and the `b`/`a` projections `(B, T, nv)`: the outputs `(B, T, nv, dv)` (f32) and the new
    /// state. A prefill with the `chunks` kernels on CUDA runs in two kernels
    /// (`kernels::deltanet_chunks`); a training pass over a `whole` sequence (zero state,
    /// nothing carried on) runs `train::deltanet_core`; otherwise candle operations make the
    /// normed queries and keys, the gates and decays, and run the recurrent (one token) or
    /// chunked form.
    fn delta_rule(
        &self,
        mixed: &Tensor,
        beta_in: &Tensor,
        a_in: &Tensor,
        state: Tensor,
        step: &Step,
        whole: bool,
    ) -> Result<(Tensor, Tensor)> {
        let t = mixed.dim(1)?;
        let (nk, nv, dk, dv) = (
            self.key_heads,
            self.value_heads,
            self.key_dim,
            self.value_dim,
        );
        // Training a whole sequence (from the zero state, nothing carried on) with the layer's
        // own constants frozen: the core as one operation with its backward written out. The state handed back is the starting one:
        // the caller drops it.
        let params = crate::train::deltanet_core::CoreParams {
            neg_a: &self.neg_a,
            dt_bias: &self.dt_bias,
            q_scale: &self.q_scale,
            k_scale: &self.k_scale,
            heads: (nk, nv, dk, dv),
            kernel: step.fused.chunks,
        };
        let constants = [&self.neg_a, &self.dt_bias, &self.q_scale, &self.k_scale];
        if whole
            && t > 1
            && crate::train::ops::tracked(&[mixed, beta_in, a_in])
            && !crate::train::ops::tracked(&constants)
        {
            // Profiling: the core's backward is charged to the delta rule.
            let mark = |x: &Tensor| step.mark_backward(x, "backward: DeltaNet delta rule");
            let (mixed, beta_in, a_in) = (mark(mixed)?, mark(beta_in)?, mark(a_in)?);
            let o = crate::train::deltanet_core::deltanet_core(&mixed, &beta_in, &a_in, &params)?;
            step.lap("deltanet: delta rule (recurrent or chunk pass)")?;
            return Ok((o, state));
        }
        #[cfg(feature = "cuda")]
        if t > 1
            && step.fused.chunks
            && mixed.device().is_cuda()
            && !crate::train::ops::tracked(&[mixed, beta_in, a_in, &state])
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
            let (o, state) = chunks.carry(state, true)?;
            step.lap("deltanet: delta rule (recurrent or chunk pass)")?;
            return Ok((o.transpose(1, 2)?.contiguous()?, state));
        }
        // The normed queries and keys, values, gates and decays, heads first.
        let [q, k, v, beta, g] =
            crate::train::deltanet_core::rule_inputs(mixed, beta_in, a_in, &params)?;
        // Decoding steps use the recurrence, longer inputs (prefill) the chunked form.
        step.lap("deltanet: norms, gates, layout")?;
        let (o, state) = if t == 1 {
            delta_rule_recurrent(&q, &k, &v, &beta, &g, state)?
        } else if crate::train::ops::tracked(&[&q, &k, &v, &beta, &g, &state]) {
            // Training: one operation with its own backward pass.
            let mark = |x: &Tensor| step.mark_backward(x, "backward: DeltaNet delta rule");
            crate::train::delta_rule::chunked_delta_rule(
                &mark(&q)?,
                &mark(&k)?,
                &mark(&v)?,
                &mark(&beta)?,
                &mark(&g)?,
                &state,
                step.fused.chunks,
            )?
        } else {
            let chunks = Chunks::prepare(&q, &k, &v, &beta, &g)?;
            step.lap("deltanet: chunks, state-free part")?;
            chunks.carry(state, step.fused.chunks)?
        };
        step.lap("deltanet: delta rule (recurrent or chunk pass)")?;
        Ok((o.transpose(1, 2)?.contiguous()?, state))
    }

    /// The layer's output for `x` `(B, T, hidden)`. With a `cache`, the convolution history and
    /// recurrent state continue from it and are left in it (on CUDA, a single new token goes
    /// through lamar's decoding kernel); without one, both start at zero and are dropped (a
    /// whole sequence, e.g. for training).
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        step: &Step,
        cache: Option<&mut DeltaNetCache>,
    ) -> Result<Tensor> {
        let mut scratch = DeltaNetCache::default();
        // A whole sequence: nothing before it, and its state and history are dropped.
        let whole = cache.is_none();
        let cache = cache.unwrap_or(&mut scratch);
        // Padding contributes nothing: zero inputs give zero keys (no state writes) and zero
        // convolution inputs.
        let x = &match &step.mask {
            Some(mask) => x.broadcast_mul(&mask.unsqueeze(2)?.to_dtype(x.dtype())?)?,
            None => x.clone(),
        };
        let x = &step.mark_backward(x, "backward: DeltaNet input projection (with adapters)")?;
        let b = x.dim(0)?;
        let (nv, dk, dv) = (self.value_heads, self.key_dim, self.value_dim);
        let [qkv, z, beta_in, a_in]: [Tensor; 4] = self
            .input
            .forward_with(x, step.fused.gemv, step.lora.as_deref())?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("DeltaNet input projection".into()))?;
        step.lap("deltanet: input projection")?;
        #[cfg(feature = "cuda")]
        if x.dim(1)? == 1
            && step.fused.deltanet
            && !x.track_op()
            && step.mask.is_none()
            && x.device().is_cuda()
            && let Some(out) = self.decode_fused([&qkv, &z, &beta_in, &a_in], cache)?
        {
            return self
                .out
                .project_with(&out, step.fused.gemv, step.lora.as_deref());
        }
        let qkv = step.mark_backward(&qkv, "backward: DeltaNet convolution")?;
        let mixed = self.convolve(&qkv, cache, step.fused.deltanet)?;
        let mixed = step.mark_backward(&mixed, "backward: DeltaNet norms, gates, layout")?;
        step.lap("deltanet: convolution")?;
        let state = match cache.state.take() {
            Some(s) => s,
            None => Tensor::zeros((b, nv, dk, dv), DType::F32, x.device())?,
        };
        let (o, state) = self.delta_rule(&mixed, &beta_in, &a_in, state, step, whole)?;
        cache.state = Some(state);
        // o: (B, T, nv, dv), f32.
        let o = step.mark_backward(&o, "backward: DeltaNet gated norm")?;
        let gated = self.gated_norm(&o, &z, step.fused.deltanet)?;
        let gated = step.mark_backward(
            &gated,
            "backward: DeltaNet output projection (with adapter)",
        )?;
        step.lap("deltanet: gated norm")?;
        let out = self
            .out
            .project_with(&gated, step.fused.gemv, step.lora.as_deref())?;
        step.lap("deltanet: output projection")?;
        Ok(out)
    }

    /// `round(round(rms(o) · weight) · silu(z))` per value head, for the outputs `o`
    /// `(B, T, nv, dv)` (f32) and the gate `z` `(B, T, nv·dv)`: `(B, T, nv·dv)` in the model's
    /// dtype. With `kernel` on a CUDA device, one kernel (and one for its backward in training).
    fn gated_norm(&self, o: &Tensor, z: &Tensor, kernel: bool) -> Result<Tensor> {
        if kernel
            && let Some(gated) =
                crate::train::gated_norm::gated_rms_norm(o, z, &self.norm_weight_f32, self.eps)?
        {
            return Ok(gated);
        }
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
