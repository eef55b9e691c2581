//! The gated delta rule of a Gated DeltaNet layer, in its two forms: one token at a time
//! ([`delta_rule_recurrent`], decoding) and in chunks of [`CHUNK`] tokens
//! ([`delta_rule_chunked`], prefill). Both take `(B, H, T, ·)` f32 tensors and the state
//! `(B, H, dk, dv)`, and return the outputs and the new state; they agree to rounding (tested).

use candle_core::{DType, Result, Tensor};

/// The gated delta rule, one token at a time. Inputs are `(B, H, T, ·)` in f32 (`q` already
/// normalised and scaled, `k` normalised, `g` the log-decay ≤ 0); the state is `(B, H, dk, dv)`:
/// `S ← e^{g_t}·S; S ← S + k_t (β_t (v_t − Sᵀk_t))ᵀ; o_t = Sᵀ q_t`.
pub fn delta_rule_recurrent(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    beta: &Tensor,
    g: &Tensor,
    mut state: Tensor,
) -> Result<(Tensor, Tensor)> {
    let (b, h, t, _) = q.dims4()?;
    if t == 1 {
        // One decoding step: no slicing, the (B, H, 1, d) inputs are already per token.
        let decay = g.exp()?.reshape((b, h, 1, 1))?;
        state = state.broadcast_mul(&decay)?;
        let remembered = k.matmul(&state)?; // (B, H, 1, dv)
        let delta = (v - remembered)?.broadcast_mul(&beta.unsqueeze(3)?)?;
        state = (state + k.transpose(2, 3)?.matmul(&delta)?)?;
        return Ok((q.matmul(&state)?, state));
    }
    let decay = g.exp()?;
    let mut outputs = Vec::with_capacity(t);
    for step in 0..t {
        let at = |x: &Tensor| x.narrow(2, step, 1)?.squeeze(2)?.contiguous();
        let (qt, kt, vt) = (at(q)?, at(k)?, at(v)?); // (B, H, d)
        let (bt, dt) = (at(beta)?, at(&decay)?); // (B, H)
        state = state.broadcast_mul(&dt.reshape((b, h, 1, 1))?)?;
        let remembered = kt.unsqueeze(2)?.matmul(&state)?.squeeze(2)?; // (B, H, dv)
        let delta = (vt - remembered)?.broadcast_mul(&bt.unsqueeze(2)?)?;
        state = (state + kt.unsqueeze(3)?.matmul(&delta.unsqueeze(2)?)?)?;
        outputs.push(qt.unsqueeze(2)?.matmul(&state)?);
    }
    Ok((Tensor::cat(&outputs, 2)?, state))
}

/// Tokens per chunk of [`delta_rule_chunked`] (transformers' choice).
pub const CHUNK: usize = 64;

/// The same rule in chunks of [`CHUNK`] tokens (for prefill). With `G` the cumulative
/// log-decay in a chunk, `D_ij = e^{G_i − G_j}` (j ≤ i), `L` the strictly lower part of
/// `(βk)kᵀ ⊙ D`, `T = (I + L)⁻¹` (computed exactly as `Π_{k<6} (I + (−L)^{2^k})`, since `L` is
/// nilpotent), `U = T(βv)` and `W = T(βk ⊙ e^G)`:
/// `v' = U − W S`, `o = (q ⊙ e^G) S + ((q kᵀ) ⊙ D) v'`, `S ← e^{G_last} S + (k ⊙ e^{G_last − G})ᵀ v'`.
///
/// Everything that does not involve the state `S` (decays, `T`, `U`, `W`, `(q kᵀ) ⊙ D`) is
/// computed for all chunks at once ([`Chunks::prepare`]); only the pass that carries the state
/// from chunk to chunk is sequential ([`Chunks::carry`]). With `kernel` (CUDA only), that pass
/// runs in one kernel (`kernels::deltanet_chunks`) where its sizes allow; otherwise (and on the
/// CPU) as candle operations, about eight per chunk.
pub fn delta_rule_chunked(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    beta: &Tensor,
    g: &Tensor,
    state: Tensor,
    kernel: bool,
) -> Result<(Tensor, Tensor)> {
    Chunks::prepare(q, k, v, beta, g)?.carry(state, kernel)
}

/// The state-independent part of [`delta_rule_chunked`], for all chunks at once, as
/// `(B·H, N, C, ·)` tensors (candle's batched products take two batch axes): the number of
/// kernel launches does not grow with the prompt.
pub struct Chunks {
    /// `(B, H, T)` of the input, and the key and value sizes.
    dims: (usize, usize, usize, usize, usize),
    /// `U = T(βv)`, `(B·H, N, C, dv)`.
    u: Tensor,
    /// `W = T(βk ⊙ e^G)`, `(B·H, N, C, dk)`.
    w: Tensor,
    /// `q ⊙ e^G`, `(B·H, N, C, dk)`.
    q_grown: Tensor,
    /// `(q kᵀ) ⊙ D`, `(B·H, N, C, C)`.
    qk: Tensor,
    /// `(k ⊙ e^{G_last − G})ᵀ`, `(B·H, N, dk, C)`.
    k_carry_t: Tensor,
    /// `e^{G_last}`, `(B·H, N, 1, 1)`.
    last_decay: Tensor,
}

/// Every intermediate of [`Chunks::prepare`], as `(B·H, N, C, ·)` tensors (`(B·H, N, C)` for
/// per-token scalars): what the state-free part computes, kept for a backward pass that
/// recomputes rather than stores it (`train::delta_rule`).
pub(crate) struct ChunkParts {
    /// `(B, H, T)` of the input, and the key and value sizes.
    pub dims: (usize, usize, usize, usize, usize),
    /// The chunked (zero-padded) inputs.
    pub q: Tensor,
    pub k: Tensor,
    pub v: Tensor,
    pub beta: Tensor,
    /// `1` on and below the diagonal, `(C, C)` f32.
    pub lower: Tensor,
    /// `1` strictly below the diagonal, `(C, C)` f32.
    pub strictly: Tensor,
    /// `e^G`, `(B·H, N, C, 1)`.
    pub grown: Tensor,
    /// `D`, zero above the diagonal.
    pub decay: Tensor,
    /// `βk` and `βv`.
    pub k_beta: Tensor,
    pub v_beta: Tensor,
    /// `(βk) kᵀ`, before the decay and the mask.
    pub k_beta_k: Tensor,
    /// `T = (I + L)⁻¹`.
    pub inverse: Tensor,
    /// `βk ⊙ e^G`, the factor of `W`.
    pub k_grown: Tensor,
    pub u: Tensor,
    pub w: Tensor,
    /// `q kᵀ` before the decay, and after it (`A`).
    pub q_k: Tensor,
    pub qk: Tensor,
    pub q_grown: Tensor,
    /// `e^{G_last − G}`, `(B·H, N, C, 1)`, and the keys it carries, `(B·H, N, C, dk)`.
    pub carry_decay: Tensor,
    pub k_carry: Tensor,
    /// `e^{G_last}`, `(B·H, N, 1, 1)`.
    pub last_decay: Tensor,
}

impl ChunkParts {
    /// The state-free part of the chunked rule for `(B, H, T, ·)` inputs (see
    /// [`delta_rule_chunked`] for the formulas).
    pub fn compute(q: &Tensor, k: &Tensor, v: &Tensor, beta: &Tensor, g: &Tensor) -> Result<Self> {
        let (b, h, t, dk) = q.dims4()?;
        let dv = v.dim(3)?;
        let device = q.device();
        // Chunks of a multiple of 4 tokens (the kernel's loads are 4 floats wide).
        let c = CHUNK.min(t.max(1).next_multiple_of(4));
        let n = t.div_ceil(c);
        let padded = n * c;
        // Zero padding: β = 0 and g = 0 leave the state alone; padded outputs are dropped.
        let pad = |x: &Tensor| -> Result<Tensor> {
            if padded == t {
                return Ok(x.clone());
            }
            let mut shape = x.dims().to_vec();
            shape[2] = padded - t;
            Tensor::cat(&[x, &Tensor::zeros(shape, x.dtype(), device)?], 2)
        };
        let bh = b * h;
        let q = pad(q)?.reshape((bh, n, c, dk))?;
        let k = pad(k)?.reshape((bh, n, c, dk))?;
        let v = pad(v)?.reshape((bh, n, c, dv))?;
        let beta = pad(beta)?.reshape((bh, n, c))?;
        let g = pad(g)?.reshape((bh, n, c))?;
        let mask = |keep: fn(usize, usize) -> bool| -> Result<Tensor> {
            let values: Vec<f32> = (0..c)
                .flat_map(|i| (0..c).map(move |j| if keep(i, j) { 1.0 } else { 0.0 }))
                .collect();
            Tensor::from_vec(values, (c, c), device)
        };
        let lower = mask(|i, j| j <= i)?;
        let strictly = mask(|i, j| j < i)?;
        let eye = Tensor::eye(c, DType::F32, device)?;
        let cum = g.cumsum(2)?; // G, within each chunk
        let diff = cum.unsqueeze(3)?.broadcast_sub(&cum.unsqueeze(2)?)?; // G_i − G_j
        // D: e^{G_i − G_j} on and below the diagonal (where G_i ≤ G_j, so no overflow), 0 above.
        let decay = diff.broadcast_mul(&lower)?.exp()?.broadcast_mul(&lower)?;
        let k_beta = k.broadcast_mul(&beta.unsqueeze(3)?)?;
        let v_beta = v.broadcast_mul(&beta.unsqueeze(3)?)?;
        let k_t = k.transpose(2, 3)?.contiguous()?;
        let grown = cum.exp()?.unsqueeze(3)?; // e^G
        let k_beta_k = k_beta.matmul(&k_t)?;
        let l = k_beta_k.mul(&decay)?.broadcast_mul(&strictly)?;
        // (I + L)⁻¹ = Π_{k<6} (I + M^{2^k}) with M = −L (L^64 = 0 for chunks of 64).
        let mut power = l.neg()?;
        let mut inverse = power.broadcast_add(&eye)?;
        let mut span = 2;
        while span < c {
            power = power.matmul(&power)?;
            inverse = inverse.matmul(&power.broadcast_add(&eye)?)?;
            span *= 2;
        }
        let k_grown = k_beta.broadcast_mul(&grown)?;
        let u = inverse.matmul(&v_beta)?;
        let w = inverse.matmul(&k_grown)?;
        let q_k = q.matmul(&k_t)?;
        let qk = q_k.mul(&decay)?;
        let q_grown = q.broadcast_mul(&grown)?;
        let last = cum.narrow(2, c - 1, 1)?; // (B·H, N, 1)
        let carry_decay = last.broadcast_sub(&cum)?.exp()?.unsqueeze(3)?;
        let k_carry = k.broadcast_mul(&carry_decay)?;
        let last_decay = last.exp()?.unsqueeze(3)?;
        Ok(ChunkParts {
            dims: (b, h, t, dk, dv),
            q,
            k,
            v,
            beta,
            lower,
            strictly,
            grown,
            decay,
            k_beta,
            v_beta,
            k_beta_k,
            inverse,
            k_grown,
            u,
            w,
            q_k,
            qk,
            q_grown,
            carry_decay,
            k_carry,
            last_decay,
        })
    }
}

impl Chunks {
    /// Splits `(B, H, T, ·)` inputs (as [`delta_rule_recurrent`] takes them) into chunks and
    /// computes everything that does not need the state.
    pub fn prepare(q: &Tensor, k: &Tensor, v: &Tensor, beta: &Tensor, g: &Tensor) -> Result<Self> {
        let parts = ChunkParts::compute(q, k, v, beta, g)?;
        Ok(Chunks {
            dims: parts.dims,
            k_carry_t: parts.k_carry.transpose(2, 3)?.contiguous()?,
            u: parts.u,
            w: parts.w,
            q_grown: parts.q_grown,
            qk: parts.qk,
            last_decay: parts.last_decay,
        })
    }

    /// [`Chunks::prepare`] in one CUDA kernel straight from a DeltaNet layer's convolution
    /// output (the L2 norms, gates and decays included: `kernels::deltanet_chunks`), in chunks
    /// of 64 tokens. `None` where the kernel does not take the sizes.
    #[cfg(feature = "cuda")]
    pub fn prepare_fused(
        inputs: &crate::kernels::deltanet_chunks::ChunkInputs,
        key_dim: usize,
        value_dim: usize,
    ) -> Result<Option<Self>> {
        use crate::kernels::deltanet_chunks::chunk_prepare;
        let Some([u, w, q_grown, qk, k_carry_t, last_decay]) =
            chunk_prepare(inputs, key_dim, value_dim)?
        else {
            return Ok(None);
        };
        let (b, t, _) = inputs.mixed.dims3()?;
        let (bh, n) = last_decay.dims2()?;
        Ok(Some(Chunks {
            dims: (b, inputs.value_heads, t, key_dim, value_dim),
            u,
            w,
            q_grown,
            qk,
            k_carry_t,
            last_decay: last_decay.reshape((bh, n, 1, 1))?,
        }))
    }

    /// Carries the state `(B, H, dk, dv)` through the chunks in order: the outputs
    /// `(B, H, T, dv)` and the last state. `kernel`: see [`delta_rule_chunked`].
    pub fn carry(self, state: Tensor, kernel: bool) -> Result<(Tensor, Tensor)> {
        let (b, h, t, dk, dv) = self.dims;
        let (bh, n) = (self.u.dim(0)?, self.u.dim(1)?);
        let mut state = state.reshape((bh, dk, dv))?;
        #[cfg(feature = "cuda")]
        if kernel && self.u.device().is_cuda() {
            use crate::kernels::deltanet_chunks::{DeltaNetChunks, deltanet_chunks};
            let chunks = DeltaNetChunks {
                u: &self.u,
                w: &self.w,
                q: &self.q_grown,
                a: &self.qk,
                k_carry: &self.k_carry_t,
                decay: &self.last_decay,
            };
            if let Some((out, state)) = deltanet_chunks(&chunks, &state)? {
                let out = out.reshape((bh, n * self.u.dim(2)?, dv))?.narrow(1, 0, t)?;
                return Ok((out.reshape((b, h, t, dv))?, state.reshape((b, h, dk, dv))?));
            }
        }
        #[cfg(not(feature = "cuda"))]
        let _ = kernel;
        let mut outputs = Vec::with_capacity(n);
        for chunk in 0..n {
            let at = |x: &Tensor| x.narrow(1, chunk, 1)?.squeeze(1);
            let v_new = (at(&self.u)? - at(&self.w)?.matmul(&state)?)?;
            outputs.push((at(&self.q_grown)?.matmul(&state)? + at(&self.qk)?.matmul(&v_new)?)?);
            state = (state.broadcast_mul(&at(&self.last_decay)?)?
                + at(&self.k_carry_t)?.matmul(&v_new)?)?;
        }
        let out = Tensor::cat(&outputs, 1)?
            .narrow(1, 0, t)?
            .reshape((b, h, t, dv))?;
        Ok((out, state.reshape((b, h, dk, dv))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, Device};

    /// Deterministic pseudo-random numbers in [-1, 1) (the CPU device cannot be seeded).
    fn numbers(shape: &[usize], seed: u64) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let values: Vec<f32> = (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu)
    }

    /// Inputs as the layer makes them: unit-norm keys, scaled unit-norm queries, β in (0, 1),
    /// log-decays ≤ 0, and a non-zero starting state.
    fn inputs(b: usize, h: usize, t: usize, dk: usize, dv: usize) -> Result<[Tensor; 6]> {
        let unit = |x: Tensor| -> Result<Tensor> {
            x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
        };
        let q = (unit(numbers(&[b, h, t, dk], 1)?)? * (1.0 / (dk as f64).sqrt()))?;
        let k = unit(numbers(&[b, h, t, dk], 2)?)?;
        let v = numbers(&[b, h, t, dv], 3)?;
        let beta = candle_nn::ops::sigmoid(&(numbers(&[b, h, t], 4)? * 2.0)?)?;
        let g = ((numbers(&[b, h, t], 5)? + 1.0)? * -0.15)?;
        let state = (numbers(&[b, h, dk, dv], 6)? * 0.5)?;
        Ok([q, k, v, beta, g, state])
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn chunked_and_recurrent_forms_agree() {
        // One partial chunk, exactly one chunk, and several chunks with padding.
        for t in [5, 64, 150] {
            let [q, k, v, beta, g, state] = inputs(2, 3, t, 8, 6).unwrap();
            let (o1, s1) = delta_rule_recurrent(&q, &k, &v, &beta, &g, state.clone()).unwrap();
            let (o2, s2) = delta_rule_chunked(&q, &k, &v, &beta, &g, state, false).unwrap();
            assert_eq!(o1.dims(), o2.dims());
            assert!(
                max_diff(&o1, &o2) < 1e-4,
                "t={t}: outputs differ by {}",
                max_diff(&o1, &o2)
            );
            assert!(
                max_diff(&s1, &s2) < 1e-4,
                "t={t}: states differ by {}",
                max_diff(&s1, &s2)
            );
        }
    }
}
