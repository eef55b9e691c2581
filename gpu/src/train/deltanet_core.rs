//! A Gated DeltaNet layer's core in training passes, as one operation with its backward
//! written out: from the convolution's output `mixed` `(B, T, 2·nk·dk + nv·dv)` and the `b`
//! and `a` projections `(B, T, nv)` to the delta rule's outputs `(B, T, nv, dv)` (f32):
//!
//! ```text
//! q, k, v = split(f32(mixed))            q̂ = L2(q)·q_scale, k̂ = L2(k)·k_scale (RMS norms)
//! β = σ(b)       g = softplus(a + dt_bias) · (−e^{A_log})      o = DeltaRule(q̂, k̂, v, β, g)
//! ```
//!
//! with each query/key head widened to the `nv / nk` value heads it serves and every tensor
//! laid out heads first for the delta rule ([`super::delta_rule`]). Left to candle's autograd,
//! those few dozen operations of glue (casts, splits, widening, transposes, the gates) each
//! add a zero-initialised sum of their size to the backward pass; here the backward pass is
//! the delta rule's, then per input, elementwise:
//!
//! ```text
//! dq = RMS-norm backward of Σ_{widened heads} dq̂     (likewise dk)      dmixed = [dq, dk, dv]
//! db = dβ · β(1 − β)                                  da = dg · (−e^{A_log}) · σ(a + dt_bias)
//! ```
//!
//! The layer uses it for a whole sequence from a zero state with nothing carried on (training's
//! passes); a pass that continues a prefix keeps the composed form, whose state is tracked.

use super::ops::Computed;
use candle_core::{CustomOp3, D, DType, Result, Tensor};

/// The layer's constants and sizes the core needs.
pub struct CoreParams<'a> {
    /// `−e^{A_log}`, `(nv)`, f32.
    pub neg_a: &'a Tensor,
    /// `(nv)`, f32.
    pub dt_bias: &'a Tensor,
    /// The queries' L2-norm scale (`1/√dk` per value), `(dk)`, f32.
    pub q_scale: &'a Tensor,
    /// The keys' L2-norm scale, `(dk)`, f32.
    pub k_scale: &'a Tensor,
    /// Query/key heads `nk`, value heads `nv`, and their sizes `dk`, `dv`.
    pub heads: (usize, usize, usize, usize),
    /// Whether the delta rule runs as lamar's CUDA kernels (where its sizes allow).
    pub kernel: bool,
}

/// The `heads` heads of `d` values starting at channel `start` of `mixed` `(B, T, ·)`, as f32
/// `(B, T, heads, d)`, contiguous.
fn heads_of(mixed: &Tensor, start: usize, heads: usize, d: usize) -> Result<Tensor> {
    let (b, t, _) = mixed.dims3()?;
    mixed
        .narrow(D::Minus1, start, heads * d)?
        .to_dtype(DType::F32)?
        .contiguous()?
        .reshape((b, t, heads, d))
}

/// `a + dt_bias` in f32, `(B, T, nv)`.
fn shifted(a: &Tensor, dt_bias: &Tensor) -> Result<Tensor> {
    a.to_dtype(DType::F32)?.broadcast_add(dt_bias)
}

/// The delta rule's five inputs `q̂, k̂, v, β, g` from the convolution's output `mixed`, `b` and
/// `a`, heads first `(B, nv, T, ·)`, f32, contiguous (see the module's documentation); made of
/// operations candle differentiates where the inputs are tracked (the layer's L2 norm,
/// `qwen35`'s `l2_normalised`). The layer's composed path and [`deltanet_core`]'s forward pass
/// both use it.
pub(crate) fn rule_inputs(
    mixed: &Tensor,
    b: &Tensor,
    a: &Tensor,
    p: &CoreParams,
) -> Result<[Tensor; 5]> {
    let (nk, nv, dk, dv) = p.heads;
    let (batch, t, _) = mixed.dims3()?;
    // Each query/key head serves `nv / nk` consecutive value heads.
    let widen = |x: Tensor| -> Result<Tensor> {
        x.unsqueeze(3)?
            .broadcast_as((batch, t, nk, nv / nk, dk))?
            .contiguous()?
            .reshape((batch, t, nv, dk))
    };
    let norm = crate::qwen35::l2_normalised;
    let q = widen(norm(&heads_of(mixed, 0, nk, dk)?, p.q_scale)?)?;
    let k = widen(norm(&heads_of(mixed, nk * dk, nk, dk)?, p.k_scale)?)?;
    let v = heads_of(mixed, 2 * nk * dk, nv, dv)?;
    let beta = candle_nn::ops::sigmoid(&b.to_dtype(DType::F32)?)?;
    let g = softplus(&shifted(a, p.dt_bias)?)?.broadcast_mul(p.neg_a)?;
    let heads = |x: &Tensor| x.transpose(1, 2)?.contiguous();
    Ok([
        heads(&q)?,
        heads(&k)?,
        heads(&v)?,
        heads(&beta)?,
        heads(&g)?,
    ])
}

/// The delta rule's outputs `(B, T, nv, dv)` (f32) for the layer's convolution output
/// `mixed`, `b` and `a` (see the module's documentation), differentiable in all three.
pub fn deltanet_core(mixed: &Tensor, b: &Tensor, a: &Tensor, p: &CoreParams) -> Result<Tensor> {
    let (_, nv, dk, dv) = p.heads;
    let batch = mixed.dim(0)?;
    let inputs = rule_inputs(&mixed.detach(), &b.detach(), &a.detach(), p)?;
    let start = Tensor::zeros((batch * nv, dk, dv), DType::F32, mixed.device())?;
    let [q, k, v, beta, g] = &inputs;
    let (out, _, tape) =
        super::delta_rule::forward_untracked(&[q, k, v, beta, g], &start, p.kernel)?;
    let out = out.transpose(1, 2)?.contiguous()?;
    mixed.apply_op3(
        b,
        a,
        Core {
            inputs,
            tape,
            neg_a: p.neg_a.clone(),
            dt_bias: p.dt_bias.clone(),
            q_scale: p.q_scale.clone(),
            k_scale: p.k_scale.clone(),
            heads: p.heads,
            kernel: p.kernel,
            out: Computed::new(out),
        },
    )
}

/// `max(a, 0) + ln(1 + e^{−|a|})`.
fn softplus(a: &Tensor) -> Result<Tensor> {
    a.relu()? + (a.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// The core's operation: the delta rule's inputs (heads first, contiguous f32) and tape kept,
/// the layer's constants.
struct Core {
    inputs: [Tensor; 5],
    tape: super::carry::Tape,
    neg_a: Tensor,
    dt_bias: Tensor,
    q_scale: Tensor,
    k_scale: Tensor,
    heads: (usize, usize, usize, usize),
    kernel: bool,
    out: Computed,
}

impl Core {
    /// The gradients of `mixed`, `b` and `a` (in their dtypes) for the outputs' gradient.
    fn backward(
        &self,
        mixed: &Tensor,
        b: &Tensor,
        a: &Tensor,
        grad: &Tensor,
    ) -> Result<[Tensor; 3]> {
        let (nk, nv, dk, dv) = self.heads;
        let (batch, t, _) = mixed.dims3()?;
        let grad = grad.to_dtype(DType::F32)?.transpose(1, 2)?.contiguous()?;
        let ([d_query, d_key, d_value, d_beta, d_g], _) = super::delta_rule::backward_untracked(
            &self.inputs,
            &self.tape,
            self.kernel,
            &grad,
            None,
        )?;
        // Back to (B, T, ·), the widened heads summed onto the head they came from.
        let tokens_first = |x: Tensor| x.transpose(1, 2)?.contiguous();
        let narrow = |x: Tensor| -> Result<Tensor> {
            tokens_first(x)?
                .reshape((batch, t, nk, nv / nk, dk))?
                .sum(3)
        };
        // The norms' inputs again (the values are not needed).
        let q = heads_of(mixed, 0, nk, dk)?;
        let k = heads_of(mixed, nk * dk, nk, dk)?;
        let eps = crate::qwen35::l2_eps(dk);
        let d_query = norm_backward(&q, &narrow(d_query)?, &self.q_scale, eps)?;
        let d_key = norm_backward(&k, &narrow(d_key)?, &self.k_scale, eps)?;
        let d_value = tokens_first(d_value)?;
        let d_mixed = Tensor::cat(
            &[
                d_query.reshape((batch, t, nk * dk))?,
                d_key.reshape((batch, t, nk * dk))?,
                d_value.reshape((batch, t, nv * dv))?,
            ],
            2,
        )?
        .to_dtype(mixed.dtype())?;
        // β = σ(b): dβ/db = β(1 − β).
        let beta = candle_nn::ops::sigmoid(&b.to_dtype(DType::F32)?)?;
        let d_b = (tokens_first(d_beta)? * (&beta * (1.0 - &beta)?)?)?.to_dtype(b.dtype())?;
        // g = softplus(a + dt_bias)·(−e^{A_log}): softplus' = σ.
        let slope = candle_nn::ops::sigmoid(&shifted(a, &self.dt_bias)?)?;
        let d_a = (tokens_first(d_g)?.broadcast_mul(&self.neg_a)? * slope)?.to_dtype(a.dtype())?;
        Ok([d_mixed, d_b, d_a])
    }
}

/// The RMS norm's input gradient (the scale is a constant): lamar's kernel on CUDA, else
/// candle operations.
fn norm_backward(x: &Tensor, grad: &Tensor, scale: &Tensor, eps: f64) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda()
        && let Some((dx, _)) = crate::kernels::norm::rms_norm_backward(x, grad, scale, eps)?
    {
        return Ok(dx);
    }
    Ok(super::ops::rms_norm_backward_plain(x, grad, scale, eps)?.0)
}

impl CustomOp3 for Core {
    fn name(&self) -> &'static str {
        "deltanet-core"
    }

    super::ops::computed_forward!(3, out, "deltanet_core");

    fn bwd(
        &self,
        mixed: &Tensor,
        b: &Tensor,
        a: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let [d_mixed, d_b, d_a] = self.backward(mixed, b, a, grad)?;
        Ok((Some(d_mixed), Some(d_b), Some(d_a)))
    }
}
