//! The sequential pass of the chunked delta rule ([`crate::qwen35::delta_rule::Chunks::carry`])
//! and its adjoint, for training's [`super::delta_rule`].
//!
//! The forward pass walks the chunks in order, carrying the state `S` `(dk, dv)` per head:
//! `v'ᵢ = Uᵢ − Wᵢ Sᵢ`, `Oᵢ = Qᵢ Sᵢ + Aᵢ v'ᵢ`, `Sᵢ₊₁ = dᵢ Sᵢ + Kᵢ v'ᵢ` (`Q` the grown queries,
//! `A` the decayed query-key products, `K` the carried keys transposed, `d` the chunk's total
//! decay), and keeps every `Sᵢ` and `v'ᵢ` (`Tape`). The backward pass is in two parts:
//!
//! 1. the adjoint recurrence, sequential, in reverse (`dSᵢ₊₁` the gradient of the state after
//!    chunk `i`, zero after the last):
//!    `dv'ᵢ = Aᵢᵀ dOᵢ + Kᵢᵀ dSᵢ₊₁`, `dSᵢ = Qᵢᵀ dOᵢ + dᵢ dSᵢ₊₁ − Wᵢᵀ dv'ᵢ`;
//! 2. everything else, for all chunks at once as batched products:
//!
//! ```text
//! dUᵢ = dv'ᵢ      dWᵢ = −dv'ᵢ Sᵢᵀ      dQᵢ = dOᵢ Sᵢᵀ      dAᵢ = dOᵢ v'ᵢᵀ
//! dKᵢ = dSᵢ₊₁ v'ᵢᵀ      ddᵢ = Σ dSᵢ₊₁ ∘ Sᵢ
//! ```
//!
//! Both sequential passes treat the value columns independently. On CUDA each is one kernel
//! (`kernels::deltanet_chunks`: the state's columns in shared memory for all chunks, the
//! products on tensor cores where the sizes allow); elsewhere (and as the kernels' reference) a
//! loop of candle operations per chunk.

use candle_core::{D, DType, Result, Tensor};

/// The six per-chunk inputs, each `(BH, N, C, ·)` (the decay `(BH, N, 1, 1)`), f32, in the
/// order `[U, W, Q, A, K, d]`.
pub type CarryInputs = [Tensor; 6];

/// What the forward pass keeps for the backward pass.
pub(crate) struct Tape {
    /// The state entering each chunk: `(BH, N, dk, dv)`.
    pub states: Tensor,
    /// `v'` of every chunk, `(BH, N, C, dv)`.
    pub fresh: Tensor,
}

/// The chunk `i` of `x` `(BH, N, …)` as `(BH, …)`.
fn chunk(x: &Tensor, i: usize) -> Result<Tensor> {
    x.narrow(1, i, 1)?.squeeze(1)
}

/// Whether lamar's CUDA kernels run the passes (`kernel` asked for, inputs on CUDA).
#[cfg(feature = "cuda")]
fn on_kernel(kernel: bool, x: &Tensor) -> bool {
    kernel && x.device().is_cuda()
}

/// The outputs `(BH, N, C, dv)` from the state `state` `(BH, dk, dv)`, the state after the
/// last chunk, and the [`Tape`]. With `kernel` on CUDA, lamar's kernel where its sizes allow;
/// otherwise candle operations (the reference).
pub(crate) fn forward(
    inputs: &CarryInputs,
    state: &Tensor,
    kernel: bool,
) -> Result<(Tensor, Tensor, Tape)> {
    #[cfg(feature = "cuda")]
    if on_kernel(kernel, state) {
        use crate::kernels::deltanet_chunks::{PassKernels, deltanet_chunks_keeping};
        let chunks = kernel_chunks(inputs);
        if let Some(pass) = deltanet_chunks_keeping(&chunks, state, PassKernels::Fastest)? {
            let tape = Tape {
                states: pass.states,
                fresh: pass.fresh,
            };
            return Ok((pass.out, pass.last, tape));
        }
    }
    let _ = kernel;
    forward_plain(inputs, state)
}

/// [`forward`] as candle operations, about eight per chunk.
pub(crate) fn forward_plain(
    inputs: &CarryInputs,
    state: &Tensor,
) -> Result<(Tensor, Tensor, Tape)> {
    let [u, w, q, a, k, d] = inputs;
    let n = u.dim(1)?;
    let mut states = Vec::with_capacity(n + 1);
    let mut fresh = Vec::with_capacity(n);
    let mut outputs = Vec::with_capacity(n);
    let mut s = state.clone();
    for i in 0..n {
        let v_new = (chunk(u, i)? - chunk(w, i)?.matmul(&s)?)?;
        outputs.push((chunk(q, i)?.matmul(&s)? + chunk(a, i)?.matmul(&v_new)?)?);
        let next = (s.broadcast_mul(&chunk(d, i)?)? + chunk(k, i)?.matmul(&v_new)?)?;
        states.push(s);
        fresh.push(v_new);
        s = next;
    }
    let tape = Tape {
        states: Tensor::stack(&states, 1)?,
        fresh: Tensor::stack(&fresh, 1)?,
    };
    Ok((Tensor::stack(&outputs, 1)?, s, tape))
}

#[cfg(feature = "cuda")]
fn kernel_chunks(inputs: &CarryInputs) -> crate::kernels::deltanet_chunks::DeltaNetChunks<'_> {
    let [u, w, q, a, k, d] = inputs;
    crate::kernels::deltanet_chunks::DeltaNetChunks {
        u,
        w,
        q,
        a,
        k_carry: k,
        decay: d,
    }
}

/// The adjoint recurrence: `dv'` `(BH, N, C, dv)` and the gradient of the state after each
/// chunk `(BH, N, dk, dv)`, from the outputs' gradient and `after_last`, the gradient of the
/// state after the last chunk (zero when `None`).
fn adjoint(
    inputs: &CarryInputs,
    grad: &Tensor,
    after_last: Option<&Tensor>,
    kernel: bool,
) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if on_kernel(kernel, grad) {
        use crate::kernels::deltanet_chunks::{PassKernels, deltanet_chunks_backward};
        let chunks = kernel_chunks(inputs);
        let fastest = PassKernels::Fastest;
        if let Some(pair) = deltanet_chunks_backward(&chunks, grad, after_last, fastest)? {
            return Ok(pair);
        }
    }
    let _ = kernel;
    adjoint_plain(inputs, grad, after_last)
}

/// [`adjoint`] as candle operations, about six per chunk.
fn adjoint_plain(
    inputs: &CarryInputs,
    grad: &Tensor,
    after_last: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let [_, w, q, a, k, d] = inputs;
    let (bh, n, _, dv) = grad.dims4()?;
    let dk = w.dim(3)?;
    let mut ds = match after_last {
        Some(g) => g.to_dtype(DType::F32)?.reshape((bh, dk, dv))?,
        None => Tensor::zeros((bh, dk, dv), DType::F32, grad.device())?,
    };
    let mut d_fresh = Vec::with_capacity(n);
    let mut d_after = Vec::with_capacity(n);
    for i in (0..n).rev() {
        let d_out = chunk(grad, i)?;
        let d_v = (chunk(a, i)?.t()?.matmul(&d_out)? + chunk(k, i)?.t()?.matmul(&ds)?)?;
        let next = ((chunk(q, i)?.t()?.matmul(&d_out)? + ds.broadcast_mul(&chunk(d, i)?)?)?
            - chunk(w, i)?.t()?.matmul(&d_v)?)?;
        d_after.push(ds);
        d_fresh.push(d_v);
        ds = next;
    }
    d_fresh.reverse();
    d_after.reverse();
    Ok((Tensor::stack(&d_fresh, 1)?, Tensor::stack(&d_after, 1)?))
}

/// The gradients of the six inputs (each of its input's shape) and of the starting state
/// `(BH, dk, dv)`, for the outputs' gradient `grad` `(BH, N, C, dv)` and `after_last`, the
/// gradient of the final state (`None`: zero), from the forward pass's [`Tape`]. `kernel`: as
/// in [`forward`].
pub(crate) fn backward(
    inputs: &CarryInputs,
    tape: &Tape,
    grad: &Tensor,
    after_last: Option<&Tensor>,
    kernel: bool,
) -> Result<([Tensor; 6], Tensor)> {
    let grad = grad.to_dtype(DType::F32)?.contiguous()?;
    let (d_fresh, d_after) = adjoint(inputs, &grad, after_last, kernel)?;
    // The recurrence's last step, for the state entering chunk 0:
    // dS₀ = Q₀ᵀ dO₀ + d₀ dS₁ − W₀ᵀ dv'₀.
    let [_, w, q, _, _, d] = inputs;
    let d_start = ((chunk(q, 0)?.t()?.matmul(&chunk(&grad, 0)?)?
        + chunk(&d_after, 0)?.broadcast_mul(&chunk(d, 0)?)?)?
        - chunk(w, 0)?.t()?.matmul(&chunk(&d_fresh, 0)?)?)?;
    let entering = &tape.states;
    let entering_t = entering.transpose(2, 3)?;
    let fresh_t = tape.fresh.transpose(2, 3)?;
    let d_w = d_fresh.matmul(&entering_t)?.neg()?;
    let d_q = grad.matmul(&entering_t)?;
    let d_a = grad.matmul(&fresh_t)?;
    let d_k = d_after.matmul(&fresh_t)?;
    let d_d = (&d_after * entering)?
        .sum_keepdim(D::Minus1)?
        .sum_keepdim(2)?;
    Ok(([d_fresh, d_w, d_q, d_a, d_k, d_d], d_start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], seed: u64, scale: f32) -> Tensor {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn max_relative(a: &Tensor, b: &Tensor) -> f32 {
        let diff = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let size = b
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        diff / size.max(1e-30)
    }

    /// Outputs, final state and all six gradients (the adjoint recurrence, then the batched
    /// products) equal those of autograd through the plain loop (the pass as candle
    /// operations).
    #[test]
    fn the_adjoint_recurrence_gives_autograds_gradients() {
        let (bh, n, c, dk, dv) = (3, 5, 4, 6, 7);
        let shapes: [&[usize]; 6] = [
            &[bh, n, c, dv],
            &[bh, n, c, dk],
            &[bh, n, c, dk],
            &[bh, n, c, c],
            &[bh, n, dk, c],
            &[bh, n, 1, 1],
        ];
        let vars: Vec<Var> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| Var::from_tensor(&random(s, k as u64 + 1, 0.5)).unwrap())
            .collect();
        let state_var = Var::from_tensor(&random(&[bh, dk, dv], 9, 0.5)).unwrap();
        let state = state_var.as_tensor().clone();
        let inputs: CarryInputs = vars
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let weight = random(&[bh, n, c, dv], 10, 1.0);
        let last_weight = random(&[bh, dk, dv], 11, 1.0);
        // With the final state in the loss and without: the adjoint recurrence then starts
        // from its gradient, or from zero (lamar's kernel, where there is one).
        for with_last in [false, true] {
            // The plain loop, differentiated by candle.
            let (want, want_state, _) = forward_plain(&inputs, &state).unwrap();
            let mut objective = (&want * &weight).unwrap().sum_all().unwrap();
            if with_last {
                objective = (objective + (&want_state * &last_weight).unwrap().sum_all()).unwrap();
            }
            let want_grads = objective.backward().unwrap();
            let detached: CarryInputs = inputs.clone().map(|x| x.detach());
            let (got, got_state, tape) = forward(&detached, &state.detach(), true).unwrap();
            assert!(max_relative(&got, &want) < 1e-6);
            assert!(max_relative(&got_state, &want_state) < 1e-6);
            let first = tape.states.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
            assert!(max_relative(&first, &state) == 0.0);
            let after_last = with_last.then_some(&last_weight);
            let (grads, d_start) = backward(&detached, &tape, &weight, after_last, true).unwrap();
            for (k, var) in vars.iter().enumerate() {
                let (g, w) = (&grads[k], want_grads.get(var.as_tensor()).unwrap());
                let error = max_relative(g, w);
                assert!(
                    error < 1e-5,
                    "input {k} (final state in the loss: {with_last}): gradient off by {error}"
                );
            }
            let error = max_relative(&d_start, want_grads.get(&state).unwrap());
            assert!(
                error < 1e-5,
                "starting state (final state in the loss: {with_last}): gradient off by {error}"
            );
        }
    }
}
