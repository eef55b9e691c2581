//! The sequential pass of the chunked delta rule ([`crate::qwen35::delta_rule::Chunks::carry`])
//! with its own backward pass, for training.
//!
//! The forward pass walks the chunks in order, carrying the state `S` `(dk, dv)` per head:
//! `v'ᵢ = Uᵢ − Wᵢ Sᵢ`, `Oᵢ = Qᵢ Sᵢ + Aᵢ v'ᵢ`, `Sᵢ₊₁ = dᵢ Sᵢ + Kᵢ v'ᵢ` (`Q` the grown queries,
//! `A` the decayed query-key products, `K` the carried keys transposed, `d` the chunk's total
//! decay). Left to candle's autograd, every chunk's slice of the six inputs is a `narrow`, whose
//! backward writes a zero tensor of the input's full size: hundreds of megabytes per chunk at
//! full size, for each of the six inputs and each of the ~130 chunks of an 8,192-token layer.
//! Here the forward pass keeps the state entering every chunk, and the backward pass walks the
//! chunks in reverse with the adjoint recurrence
//!
//! ```text
//! dAᵢ = dOᵢ v'ᵢᵀ            dv'ᵢ = Aᵢᵀ dOᵢ + Kᵢᵀ dSᵢ₊₁       dQᵢ = dOᵢ Sᵢᵀ
//! dKᵢ = dSᵢ₊₁ v'ᵢᵀ          ddᵢ = Σ dSᵢ₊₁ ∘ Sᵢ               dUᵢ = dv'ᵢ
//! dWᵢ = −dv'ᵢ Sᵢᵀ           dSᵢ = Qᵢᵀ dOᵢ + dᵢ dSᵢ₊₁ − Wᵢᵀ dv'ᵢ
//! ```
//!
//! collecting each input's gradient chunk by chunk and joining them once. The six inputs travel
//! as one packed vector through a custom operation, so that the only slicing autograd sees is
//! one split of that vector (views, no zero tensors).

use candle_core::{CustomOp1, DType, Layout, Result, Shape, Tensor};

/// The six per-chunk inputs, each `(BH, N, C, ·)` (the decay `(BH, N, 1, 1)`), f32, in the
/// order `[U, W, Q, A, K, d]`.
pub type CarryInputs = [Tensor; 6];

/// The outputs `(BH, N, C, dv)` of the sequential pass from the state `state` `(BH, dk, dv)`
/// (constant: not differentiated) and the state after the last chunk (detached).
/// Differentiable in all six inputs.
pub fn carry(inputs: &CarryInputs, state: &Tensor) -> Result<(Tensor, Tensor)> {
    let detached: Vec<Tensor> = inputs
        .iter()
        .map(|x| x.detach().contiguous())
        .collect::<Result<_>>()?;
    let detached: CarryInputs = detached
        .try_into()
        .map_err(|_| candle_core::Error::Msg("carry: six inputs".into()))?;
    let (out, states) = forward(&detached, &state.detach())?;
    let last = states
        .last()
        .cloned()
        .ok_or_else(|| candle_core::Error::Msg("carry: no chunks".into()))?;
    if !inputs.iter().any(|x| x.track_op()) {
        return Ok((out, last));
    }
    let packed = Tensor::cat(
        &inputs
            .iter()
            .map(|x| x.flatten_all())
            .collect::<Result<Vec<_>>>()?,
        0,
    )?;
    let out = packed.apply_op1(Carry {
        inputs: detached,
        states,
        out: super::ops::Computed::new(out),
    })?;
    Ok((out, last))
}

/// The chunk `i` of `x` `(BH, N, …)` as `(BH, …)`.
fn chunk(x: &Tensor, i: usize) -> Result<Tensor> {
    x.narrow(1, i, 1)?.squeeze(1)
}

/// The outputs, and the state entering each chunk followed by the final state.
pub(crate) fn forward(inputs: &CarryInputs, state: &Tensor) -> Result<(Tensor, Vec<Tensor>)> {
    let [u, w, q, a, k, d] = inputs;
    let n = u.dim(1)?;
    let mut states = Vec::with_capacity(n + 1);
    let mut outputs = Vec::with_capacity(n);
    let mut s = state.clone();
    for i in 0..n {
        let v_new = (chunk(u, i)? - chunk(w, i)?.matmul(&s)?)?;
        outputs.push((chunk(q, i)?.matmul(&s)? + chunk(a, i)?.matmul(&v_new)?)?);
        let next = (s.broadcast_mul(&chunk(d, i)?)? + chunk(k, i)?.matmul(&v_new)?)?;
        states.push(s);
        s = next;
    }
    states.push(s);
    Ok((Tensor::stack(&outputs, 1)?, states))
}

/// Passes the forward output through; its backward is the adjoint recurrence.
struct Carry {
    inputs: CarryInputs,
    /// The state entering each chunk, then the final one.
    states: Vec<Tensor>,
    out: super::ops::Computed,
}

/// The gradients of the six inputs (each of its input's shape) for the outputs' gradient
/// `grad` `(BH, N, C, dv)`, given the state entering each chunk and the final one.
pub(crate) fn backward(
    inputs: &CarryInputs,
    states: &[Tensor],
    grad: &Tensor,
) -> Result<[Tensor; 6]> {
    let [u, w, q, a, k, d] = inputs;
    let n = u.dim(1)?;
    let grad = grad.to_dtype(DType::F32)?.contiguous()?;
    let mut ds = states[n].zeros_like()?;
    let mut grads: [Vec<Tensor>; 6] = Default::default();
    for i in (0..n).rev() {
        let s = &states[i];
        let (ui, wi, qi, ai, ki, di) = (
            chunk(u, i)?,
            chunk(w, i)?,
            chunk(q, i)?,
            chunk(a, i)?,
            chunk(k, i)?,
            chunk(d, i)?,
        );
        let v_new = (ui - wi.matmul(s)?)?;
        let d_out = chunk(&grad, i)?;
        let d_a = d_out.matmul(&v_new.t()?)?;
        let d_v = (ai.t()?.matmul(&d_out)? + ki.t()?.matmul(&ds)?)?;
        let d_q = d_out.matmul(&s.t()?)?;
        let d_k = ds.matmul(&v_new.t()?)?;
        let d_d = (&ds * s)?.sum_keepdim(1)?.sum_keepdim(2)?;
        let d_w = d_v.matmul(&s.t()?)?.neg()?;
        ds = ((qi.t()?.matmul(&d_out)? + ds.broadcast_mul(&di)?)? - wi.t()?.matmul(&d_v)?)?;
        for (slot, g) in grads.iter_mut().zip([d_v, d_w, d_q, d_a, d_k, d_d]) {
            slot.push(g);
        }
    }
    let mut out = Vec::with_capacity(6);
    for mut per_chunk in grads {
        per_chunk.reverse();
        out.push(Tensor::stack(&per_chunk, 1)?);
    }
    out.try_into()
        .map_err(|_| candle_core::Error::Msg("carry: six gradients".into()))
}

impl Carry {
    /// The six gradients for the outputs' gradient `grad`, flattened and joined in input order.
    fn backward(&self, grad: &Tensor) -> Result<Tensor> {
        let grads = backward(&self.inputs, &self.states, grad)?;
        let flat: Vec<Tensor> = grads
            .iter()
            .map(|g| g.flatten_all())
            .collect::<Result<_>>()?;
        Tensor::cat(&flat, 0)
    }
}

impl CustomOp1 for Carry {
    fn name(&self) -> &'static str {
        "delta-rule-carry"
    }

    fn cpu_fwd(
        &self,
        _: &candle_core::CpuStorage,
        _: &Layout,
    ) -> Result<(candle_core::CpuStorage, Shape)> {
        self.out.cpu("carry")
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        self.out.cuda("carry")
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        self.backward(grad).map(Some)
    }
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

    /// Outputs, final state and all six gradients equal those of autograd through the plain
    /// loop (the pass as candle operations).
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
        let state = random(&[bh, dk, dv], 9, 0.5);
        let inputs: CarryInputs = vars
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let weight = random(&[bh, n, c, dv], 10, 1.0);
        // The plain loop, differentiated by candle.
        let (want, want_state) = forward(&inputs, &state).unwrap();
        let want_grads = (&want * &weight)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (got, got_state) = carry(&inputs, &state).unwrap();
        assert!(max_relative(&got, &want) < 1e-6);
        assert!(max_relative(&got_state, want_state.last().unwrap()) < 1e-6);
        let grads = (&got * &weight)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (k, var) in vars.iter().enumerate() {
            let (g, w) = (
                grads.get(var.as_tensor()).unwrap(),
                want_grads.get(var.as_tensor()).unwrap(),
            );
            let error = max_relative(g, w);
            assert!(error < 1e-5, "input {k}: gradient off by {error}");
        }
    }
}
