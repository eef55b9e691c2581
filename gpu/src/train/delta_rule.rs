//! The chunked gated delta rule for training, as one operation with its own backward pass:
//! the state-free part (`ChunkParts`, the WY form of each chunk) and the sequential pass over
//! chunks ([`super::carry`]) in the forward pass, and in the backward pass the adjoint of the
//! sequential pass followed by the derivative of the state-free part, written out.
//!
//! Left to candle's autograd, the state-free part keeps every intermediate tensor of its sixty
//! operations (the decays, the inverse's six squarings, the masked products, each `(C × C)` per
//! chunk) until the backward pass, and runs about twice as many operations back. Here the
//! forward pass keeps only its five inputs and the state entering each chunk; the backward pass
//! recomputes the chunk parts and applies, per chunk (`T = (I + L)⁻¹`, `P = (βk)kᵀ`,
//! `L = P ⊙ D` strictly below the diagonal, `x = βk ⊙ e^G`, `S = q kᵀ`, `A = S ⊙ D`):
//!
//! ```text
//! dT = dU (βv)ᵀ + dW xᵀ        d(βv) = Tᵀ dU        dx = Tᵀ dW        dL = −Tᵀ dT Tᵀ (strictly lower)
//! dP = dL ⊙ D                  d(βk) = dP k + dx ⊙ e^G              dk = dPᵀ(βk) + dSᵀ q + …
//! dS = dA ⊙ D                  dq = dS k + dQ ⊙ e^G                dD = dL ⊙ P + dA ⊙ S
//! dG_i = Σ_j (dD ⊙ D)_ij − Σ_j (dD ⊙ D)_ji + rows of dQ ⊙ Q, dx ⊙ x, − dK ⊙ K  (+ the last token's terms)
//! dg = the reverse cumulative sum of dG within the chunk
//! ```
//!
//! with `Q = q ⊙ e^G` the grown queries and `K = k ⊙ e^{G_last − G}` the carried keys. Tested
//! against autograd through the plain form on the CPU. On CUDA, for keys and values of 128,
//! the state-free part and this derivative are one kernel each (`kernels::deltanet_parts`,
//! one block per chunk: nothing of the parts is stored between them), tested against these
//! candle operations in `train::kernel_tests`.

use super::carry::{self, CarryInputs};
use crate::qwen35::delta_rule::ChunkParts;
use candle_core::{CustomOp1, D, DType, Result, Tensor};

/// The chunked delta rule over `(B, H, T, ·)` f32 inputs from the state `state`
/// `(B, H, dk, dv)`: the outputs `(B, H, T, dv)` and the final state `(B, H, dk, dv)`, both
/// differentiable in `q`, `k`, `v`, `beta`, `g` and the starting state (a pass that continues
/// a prefix gets the prefix's state tracked; the prefix's own pass hands on its final state).
/// With `kernel` on CUDA, the state-free part (forward and backward) and the sequential passes
/// (forward and adjoint) run as lamar's kernels where their sizes allow.
pub fn chunked_delta_rule(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    beta: &Tensor,
    g: &Tensor,
    state: &Tensor,
    kernel: bool,
) -> Result<(Tensor, Tensor)> {
    let inputs = [q, k, v, beta, g];
    let detached: Vec<Tensor> = inputs
        .iter()
        .map(|x| x.detach().contiguous())
        .collect::<Result<_>>()?;
    let [q0, k0, v0, b0, g0]: [Tensor; 5] = detached
        .try_into()
        .map_err(|_| candle_core::Error::Msg("delta rule: five inputs".into()))?;
    let (b, h, t, dk) = q0.dims4()?;
    let dv = v0.dim(3)?;
    let start = state.detach().reshape((b * h, dk, dv))?;
    let (out, last, tape) = forward_untracked(&[&q0, &k0, &v0, &b0, &g0], &start, kernel)?;
    let last = last.reshape((b, h, dk, dv))?;
    if !(inputs.iter().any(|x| x.track_op()) || state.track_op()) {
        return Ok((out, last));
    }
    // One operation of one input and one output: the five inputs and the starting state
    // flattened and joined; the outputs and the final state likewise.
    let mut flat = inputs
        .iter()
        .map(|x| x.flatten_all())
        .collect::<Result<Vec<_>>>()?;
    flat.push(state.flatten_all()?);
    let packed = Tensor::cat(&flat, 0)?;
    let out_len = out.elem_count();
    let joined = Tensor::cat(&[out.flatten_all()?, last.flatten_all()?], 0)?;
    let result = packed.apply_op1(DeltaRule {
        inputs: [q0, k0, v0, b0, g0],
        tape,
        kernel,
        out: super::ops::Computed::new(joined),
        out_len,
    })?;
    Ok((
        result.narrow(0, 0, out_len)?.reshape((b, h, t, dv))?,
        result
            .narrow(0, out_len, b * h * dk * dv)?
            .reshape((b, h, dk, dv))?,
    ))
}

/// The delta rule's forward pass, nothing tracked: the outputs `(B, H, T, dv)` of the five
/// inputs `(B, H, T, ·)` (contiguous f32) from the state `start` `(B·H, dk, dv)`, the final
/// state `(B·H, dk, dv)`, and what [`backward_untracked`] needs ([`carry::Tape`]).
pub(crate) fn forward_untracked(
    inputs: &[&Tensor; 5],
    start: &Tensor,
    kernel: bool,
) -> Result<(Tensor, Tensor, carry::Tape)> {
    let (b, h, t, _) = inputs[0].dims4()?;
    let dv = inputs[2].dim(3)?;
    let (carried, _) = prepare(inputs, kernel)?;
    let (out, last, tape) = carry::forward(&carried, start, kernel)?;
    drop(carried);
    let (bh, n, c) = (out.dim(0)?, out.dim(1)?, out.dim(2)?);
    let out = out
        .reshape((bh, n * c, dv))?
        .narrow(1, 0, t)?
        .reshape((b, h, t, dv))?
        .contiguous()?;
    Ok((out, last, tape))
}

/// The delta rule's backward pass: the gradients of the five inputs (each of its input's shape)
/// and of the starting state `(B·H, dk, dv)`, for the outputs' gradient `grad` `(B, H, T, dv)`
/// (f32) and `after_last`, the final state's gradient `(B·H, dk, dv)` (zero when `None`), from
/// the inputs and the [`carry::Tape`] of [`forward_untracked`].
pub(crate) fn backward_untracked(
    inputs: &[Tensor; 5],
    tape: &carry::Tape,
    kernel: bool,
    grad: &Tensor,
    after_last: Option<&Tensor>,
) -> Result<([Tensor; 5], Tensor)> {
    let [q, k, v, beta, g] = inputs;
    let (carried, parts) = prepare(&[q, k, v, beta, g], kernel)?;
    let (b, h, t, _) = q.dims4()?;
    let dv = v.dim(3)?;
    let (bh, n, c) = (b * h, carried[0].dim(1)?, carried[0].dim(2)?);
    // The outputs' gradient, zero for the padding, in chunks.
    let mut grad = grad.to_dtype(DType::F32)?.reshape((bh, t, dv))?;
    if n * c > t {
        let zeros = Tensor::zeros((bh, n * c - t, dv), DType::F32, grad.device())?;
        grad = Tensor::cat(&[&grad, &zeros], 1)?;
    }
    let grad = grad.reshape((bh, n, c, dv))?;
    let (carry_grads, d_start) = carry::backward(&carried, tape, &grad, after_last, kernel)?;
    drop(carried);
    Ok((inputs_backward(inputs, parts, &carry_grads)?, d_start))
}

/// The six inputs of the sequential pass from the five inputs `(B, H, T, ·)`: with `kernel` on
/// CUDA, lamar's kernel where its sizes allow (`kernels::deltanet_parts`, then no
/// [`ChunkParts`]); otherwise the chunk parts as candle operations, returned too.
fn prepare(inputs: &[&Tensor; 5], kernel: bool) -> Result<(CarryInputs, Option<ChunkParts>)> {
    let [q, k, v, beta, g] = *inputs;
    #[cfg(feature = "cuda")]
    if kernel && q.device().is_cuda() {
        use crate::kernels::deltanet_parts::{PartsInputs, parts_forward};
        let parts = PartsInputs { q, k, v, beta, g };
        if let Some([u, w, q_grown, qk, k_carry_t, d]) = parts_forward(&parts)? {
            let (bh, n) = d.dims2()?;
            let d = d.reshape((bh, n, 1, 1))?;
            return Ok(([u, w, q_grown, qk, k_carry_t, d], None));
        }
    }
    let _ = kernel;
    let parts = ChunkParts::compute(q, k, v, beta, g)?;
    Ok((carry_inputs(&parts)?, Some(parts)))
}

/// The gradients of the five inputs (each of its input's shape) from those of the six carry
/// inputs: lamar's kernel when it made them ([`prepare`] gave no parts), else
/// [`parts_backward`] on the chunk parts.
fn inputs_backward(
    inputs: &[Tensor; 5],
    parts: Option<ChunkParts>,
    grads: &[Tensor; 6],
) -> Result<[Tensor; 5]> {
    let Some(parts) = parts else {
        #[cfg(feature = "cuda")]
        {
            use crate::kernels::deltanet_parts::{PartsInputs, parts_backward};
            let [q, k, v, beta, g] = inputs;
            let parts = PartsInputs { q, k, v, beta, g };
            if let Some(grads) = parts_backward(&parts, grads)? {
                return Ok(grads);
            }
        }
        candle_core::bail!("delta rule: the kernel that made the chunk parts has no backward")
    };
    let (b, h, t, _, _) = parts.dims;
    let (n, c) = (parts.u.dim(1)?, parts.u.dim(2)?);
    let grads = parts_backward(&parts, grads)?;
    let mut out = Vec::with_capacity(5);
    for (x, g) in inputs.iter().zip(grads) {
        // Back to `(B, H, T, ·)`, the padding dropped.
        let width = g.elem_count() / (b * h * n * c);
        let g = g.reshape((b * h, n * c, width))?.narrow(1, 0, t)?;
        out.push(g.reshape(x.shape())?);
    }
    out.try_into()
        .map_err(|_| candle_core::Error::Msg("delta rule: five gradients".into()))
}

/// The six inputs of the sequential pass, from the chunk parts.
fn carry_inputs(parts: &ChunkParts) -> Result<CarryInputs> {
    Ok([
        parts.u.clone(),
        parts.w.clone(),
        parts.q_grown.clone(),
        parts.qk.clone(),
        parts.k_carry.transpose(2, 3)?.contiguous()?,
        parts.last_decay.clone(),
    ])
}

/// Sum over the last axis, kept: `(…, C, d)` → `(…, C, 1)`.
fn rows(x: &Tensor) -> Result<Tensor> {
    x.sum_keepdim(D::Minus1)
}

/// The gradients of the five inputs, each `(B·H, N, C, ·)` as [`ChunkParts`] holds them
/// (`(B·H, N, C)` for `β` and `g`), from the gradients of the six carry inputs.
fn parts_backward(p: &ChunkParts, grads: &[Tensor; 6]) -> Result<[Tensor; 5]> {
    let [d_u, d_w, d_q_grown, d_qk, d_k_carry_t, d_last_decay] = grads;
    let t_t = p.inverse.transpose(2, 3)?;
    // U = T(βv), W = T x.
    let d_t =
        (d_u.matmul(&p.v_beta.transpose(2, 3)?)? + d_w.matmul(&p.k_grown.transpose(2, 3)?)?)?;
    let d_v_beta = t_t.matmul(d_u)?;
    let d_x = t_t.matmul(d_w)?;
    // T = (I + L)⁻¹; L = P ⊙ D strictly below the diagonal.
    let d_l = t_t
        .matmul(&d_t)?
        .matmul(&t_t)?
        .neg()?
        .broadcast_mul(&p.strictly)?;
    let d_p = (&d_l * &p.decay)?;
    let mut d_decay = (&d_l * &p.k_beta_k)?;
    // P = (βk) kᵀ.
    let mut d_k_beta = d_p.matmul(&p.k)?;
    let mut d_k = d_p.transpose(2, 3)?.matmul(&p.k_beta)?;
    // A = S ⊙ D, S = q kᵀ.
    let d_s = (d_qk * &p.decay)?;
    d_decay = (d_decay + (d_qk * &p.q_k)?)?;
    let mut d_q = d_s.matmul(&p.k)?;
    d_k = (d_k + d_s.transpose(2, 3)?.matmul(&p.q)?)?;
    // Q = q ⊙ e^G.
    d_q = (d_q + d_q_grown.broadcast_mul(&p.grown)?)?;
    let mut d_cum = rows(&(d_q_grown * &p.q_grown)?)?;
    // x = βk ⊙ e^G.
    d_k_beta = (d_k_beta + d_x.broadcast_mul(&p.grown)?)?;
    d_cum = (d_cum + rows(&(&d_x * &p.k_grown)?)?)?;
    // βk = k ⊙ β, βv = v ⊙ β.
    let beta = p.beta.unsqueeze(3)?;
    d_k = (d_k + d_k_beta.broadcast_mul(&beta)?)?;
    let d_beta = (rows(&(&d_k_beta * &p.k)?)? + rows(&(&d_v_beta * &p.v)?)?)?;
    let d_v = d_v_beta.broadcast_mul(&beta)?;
    // K = k ⊙ e^{G_last − G}.
    let d_k_carry = d_k_carry_t.transpose(2, 3)?;
    d_k = (d_k + d_k_carry.broadcast_mul(&p.carry_decay)?)?;
    let carried = rows(&(&d_k_carry * &p.k_carry)?)?; // (BH, N, C, 1)
    d_cum = (d_cum - &carried)?;
    // e^{G_last}: the last token's G gathers the carried keys' and the chunk decay's terms.
    let d_last = (carried.sum_keepdim(2)? + (d_last_decay * &p.last_decay)?)?; // (BH, N, 1, 1)
    // D_ij = e^{G_i − G_j} on and below the diagonal.
    let e = (d_decay * &p.decay)?;
    d_cum = (d_cum + rows(&e)?)?;
    d_cum = (d_cum - e.sum_keepdim(2)?.transpose(2, 3)?)?;
    let c = d_cum.dim(2)?;
    let d_cum = d_cum.squeeze(3)?; // (BH, N, C)
    let d_cum = Tensor::cat(
        &[
            d_cum.narrow(2, 0, c - 1)?,
            (d_cum.narrow(2, c - 1, 1)? + d_last.squeeze(3)?)?,
        ],
        2,
    )?;
    // G = cumsum(g): dg_t = Σ_{i ≥ t} dG_i, as a product with the lower mask.
    let d_g = d_cum.unsqueeze(2)?.broadcast_matmul(&p.lower)?.squeeze(2)?;
    Ok([d_q, d_k, d_v, d_beta.squeeze(3)?, d_g])
}

/// Passes the forward output through; its backward recomputes the chunk parts.
struct DeltaRule {
    /// `q`, `k`, `v`, `β`, `g`, detached and contiguous, `(B, H, T, ·)`.
    inputs: [Tensor; 5],
    /// What the sequential pass kept for its adjoint.
    tape: carry::Tape,
    /// Whether the sequential passes run as lamar's kernels.
    kernel: bool,
    /// The outputs, then the final state, flattened and joined.
    out: super::ops::Computed,
    /// How many of `out`'s values are outputs (the rest is the final state).
    out_len: usize,
}

impl DeltaRule {
    /// The gradients of the five inputs and of the starting state, flattened and joined in
    /// order, for the gradient `joined` of the outputs and final state (flattened, joined).
    fn backward(&self, joined: &Tensor) -> Result<Tensor> {
        let (b, h, t, dk) = self.inputs[0].dims4()?;
        let dv = self.inputs[2].dim(3)?;
        let joined = joined.to_dtype(DType::F32)?;
        let grad = joined.narrow(0, 0, self.out_len)?.reshape((b, h, t, dv))?;
        // The final state's gradient (zero for a pass whose state is dropped): the adjoint
        // starts from it.
        let after_last =
            joined
                .narrow(0, self.out_len, b * h * dk * dv)?
                .reshape((b * h, dk, dv))?;
        let (grads, d_start) = backward_untracked(
            &self.inputs,
            &self.tape,
            self.kernel,
            &grad,
            Some(&after_last),
        )?;
        let mut flat = grads
            .iter()
            .map(|g| g.flatten_all())
            .collect::<Result<Vec<_>>>()?;
        flat.push(d_start.flatten_all()?);
        Tensor::cat(&flat, 0)
    }
}

impl CustomOp1 for DeltaRule {
    fn name(&self) -> &'static str {
        "chunked-delta-rule"
    }

    super::ops::computed_forward!(1, out, "chunked_delta_rule");

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        self.backward(grad).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], seed: u64, low: f32, high: f32) -> Tensor {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.random_range(low..high)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn max_relative(a: &Tensor, b: &Tensor) -> f32 {
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        let size = b.abs().unwrap().max_all().unwrap();
        diff.to_scalar::<f32>().unwrap() / size.to_scalar::<f32>().unwrap().max(1e-30)
    }

    /// Outputs, final state and the six gradients (the starting state's too) equal autograd's
    /// through the plain form (the chunk parts, then the plain pass), with and without the
    /// final state in the objective, for one partial chunk, exactly one chunk, and
    /// three chunks with padding (the terms of the carried keys and the chunk decay only appear
    /// when a state crosses from one chunk to the next).
    #[test]
    fn the_written_backward_gives_autograds_gradients() {
        for (t, seed) in [(6, 1), (64, 2), (150, 3)] {
            let (b, h, dk, dv) = (2, 2, 5, 3);
            let unit = |x: Tensor| {
                x.broadcast_div(&x.sqr().unwrap().sum_keepdim(3).unwrap().sqrt().unwrap())
                    .unwrap()
            };
            let vars = [
                Var::from_tensor(&(unit(random(&[b, h, t, dk], seed, -1.0, 1.0)) * 0.5).unwrap())
                    .unwrap(),
                Var::from_tensor(&unit(random(&[b, h, t, dk], seed + 10, -1.0, 1.0))).unwrap(),
                Var::from_tensor(&random(&[b, h, t, dv], seed + 20, -1.0, 1.0)).unwrap(),
                Var::from_tensor(&random(&[b, h, t], seed + 30, 0.05, 0.95)).unwrap(),
                Var::from_tensor(&random(&[b, h, t], seed + 40, -0.6, -0.01)).unwrap(),
            ];
            let [q, k, v, beta, g] = vars.each_ref().map(|v| v.as_tensor().clone());
            let state_var =
                Var::from_tensor(&random(&[b, h, dk, dv], seed + 50, -0.5, 0.5)).unwrap();
            let state = state_var.as_tensor().clone();
            let weight = random(&[b, h, t, dv], seed + 60, -1.0, 1.0);
            let last_weight = random(&[b, h, dk, dv], seed + 70, -1.0, 1.0);
            for with_last in [false, true] {
                // Autograd through the plain form: the chunk parts and the plain pass as candle
                // operations.
                let parts = ChunkParts::compute(&q, &k, &v, &beta, &g).unwrap();
                let plain_state = state.reshape((b * h, dk, dv)).unwrap();
                let inputs = carry_inputs(&parts).unwrap();
                let (want, want_last, _) = carry::forward_plain(&inputs, &plain_state).unwrap();
                let c = want.dim(2).unwrap();
                let n = want.dim(1).unwrap();
                let want = want
                    .reshape((b * h, n * c, dv))
                    .unwrap()
                    .narrow(1, 0, t)
                    .unwrap()
                    .reshape((b, h, t, dv))
                    .unwrap();
                let want_last = want_last.reshape((b, h, dk, dv)).unwrap();
                // The outputs, and with `with_last` the final state, in the objective.
                let objective = |out: &Tensor, last: &Tensor| {
                    let mut total = (out * &weight).unwrap().sum_all().unwrap();
                    if with_last {
                        total =
                            (total + (last * &last_weight).unwrap().sum_all().unwrap()).unwrap();
                    }
                    total
                };
                let want_grads = objective(&want, &want_last).backward().unwrap();
                let (got, got_state) =
                    chunked_delta_rule(&q, &k, &v, &beta, &g, &state, true).unwrap();
                assert!(max_relative(&got, &want) < 1e-5, "t={t}: outputs");
                assert!(max_relative(&got_state, &want_last) < 1e-5, "t={t}: state");
                let grads = objective(&got, &got_state).backward().unwrap();
                for (name, var) in ["q", "k", "v", "beta", "g", "state"]
                    .iter()
                    .zip(vars.iter().chain([&state_var]))
                {
                    let (ours, theirs) = (
                        grads.get(var.as_tensor()).unwrap(),
                        want_grads.get(var.as_tensor()).unwrap(),
                    );
                    let error = max_relative(ours, theirs);
                    assert!(
                        error < 1e-4,
                        "t={t}, final state in the objective: {with_last}: d{name} off by {error}"
                    );
                }
            }
        }
    }
}
