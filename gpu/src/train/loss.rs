//! The loss of LAMAR's training: Dynamic Fine-Tuning (DFT) or plain cross-entropy over the
//! response tokens, with the LM head applied a chunk of positions at a time so that the full
//! `[tokens × vocabulary]` logits never exist at once.
//!
//! Per response token `t` with logits `z_t` and target `y_t`:
//! `ce_t = logsumexp(z_t) − z_t[y_t]`; DFT weighs it by the token's own probability, not
//! differentiated: `loss = Σ_t sg(p_t)·ce_t / N` with `p_t = exp(−ce_t)` (plain cross-entropy:
//! weight 1); `N` is the number of response tokens of the whole accumulated batch. The gradient
//! with respect to the logits is `w_t·(softmax(z_t) − onehot(y_t)) / N`, so with respect to the
//! final hidden state `h_t` (logits `z_t = W h_t`) it is `w_t·(softmax(z_t)·W − W[y_t]) / N`:
//! [`head_loss`] computes that directly, chunk by chunk, and [`surrogate`] turns it into a
//! scalar whose backward pass carries it into the model. [`head_loss_weighted`] takes the
//! per-token weights as given (GRPO's policy gradient) and every variant reports each token's
//! log-probability.

use candle_core::{D, DType, Result, Tensor};

/// Which per-token weight the loss uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Dynamic Fine-Tuning: each token's cross-entropy weighted by its (not differentiated)
    /// probability.
    Dft,
    /// Plain cross-entropy.
    CrossEntropy,
}

/// What [`head_loss`] computed for a batch of response positions.
#[derive(Debug, Clone)]
pub struct HeadLoss {
    /// `Σ_t w_t·ce_t` over the positions given (divide by `N` for the loss).
    pub weighted_sum: f64,
    /// `Σ_t ce_t` over the positions given (the plain cross-entropy, for reports).
    pub cross_entropy_sum: f64,
    /// Each position's log-probability of its target, `−ce_t` (GRPO's policy log-probabilities).
    pub log_probs: Vec<f32>,
    /// The gradient of the loss (`weighted_sum / N`) with respect to each position's final
    /// hidden state, `(positions, hidden)`, f32.
    pub hidden_grad: Tensor,
}

/// The loss at response positions with final hidden states `hidden` `(positions, hidden)` and
/// targets `targets`, for the LM head `head` `(vocabulary, hidden)`; `normaliser` is `N`, the
/// response tokens of the whole accumulated batch. The head runs over `chunk` positions at a
/// time; nothing here is tracked for gradients. The two products with the head (logits, and
/// `softmax · W`) run in the head's dtype (bf16 on CUDA: tensor cores, f32 accumulation, as
/// transformers computes bf16 logits), everything between them in f32.
pub fn head_loss(
    hidden: &Tensor,
    targets: &[u32],
    head: &Tensor,
    kind: LossKind,
    normaliser: usize,
    chunk: usize,
) -> Result<HeadLoss> {
    head_loss_by(
        hidden,
        targets,
        head,
        normaliser,
        chunk,
        |ce, _| match kind {
            LossKind::Dft => ce.neg()?.exp(),
            LossKind::CrossEntropy => ce.ones_like(),
        },
    )
}

/// [`head_loss`] with each position's weight `w_t` given (not differentiated): the loss is
/// `Σ_t w_t·ce_t / N`. GRPO's policy gradient is this loss with `w_t = −∂L/∂log π_t` and `N = 1`
/// (`lamar_core::grpo::dapo_loss` gives `∂L/∂log π_t`), since `log π_t = −ce_t`.
pub fn head_loss_weighted(
    hidden: &Tensor,
    targets: &[u32],
    head: &Tensor,
    weights: &[f64],
    normaliser: usize,
    chunk: usize,
) -> Result<HeadLoss> {
    if weights.len() != targets.len() {
        candle_core::bail!("{} weights for {} targets", weights.len(), targets.len());
    }
    head_loss_by(hidden, targets, head, normaliser, chunk, |ce, start| {
        let n = ce.dim(0)?;
        let w: Vec<f32> = weights[start..start + n]
            .iter()
            .map(|&w| w as f32)
            .collect();
        Tensor::new(w.as_slice(), ce.device())
    })
}

/// The chunked head loss with the weight of a chunk's positions given by `weight_of(ce, start)`
/// (`ce` the chunk's cross-entropies, `start` its first position).
fn head_loss_by(
    hidden: &Tensor,
    targets: &[u32],
    head: &Tensor,
    normaliser: usize,
    chunk: usize,
    weight_of: impl Fn(&Tensor, usize) -> Result<Tensor>,
) -> Result<HeadLoss> {
    let (positions, _) = hidden.dims2()?;
    if targets.len() != positions {
        candle_core::bail!("{positions} positions but {} targets", targets.len());
    }
    if normaliser == 0 || chunk == 0 {
        candle_core::bail!("the normaliser and the chunk size must be positive");
    }
    let compute = head.dtype();
    let head = head.detach();
    let hidden = hidden.detach().to_dtype(compute)?;
    let (mut weighted_sum, mut cross_entropy_sum) = (0f64, 0f64);
    let mut log_probs_out = Vec::with_capacity(positions);
    let mut grads = Vec::with_capacity(positions.div_ceil(chunk));
    for start in (0..positions).step_by(chunk) {
        let n = chunk.min(positions - start);
        let h = hidden.narrow(0, start, n)?;
        let y = Tensor::new(&targets[start..start + n], hidden.device())?;
        let z = h.matmul(&head.t()?)?.to_dtype(DType::F32)?; // (n, V)
        let max = z.max_keepdim(D::Minus1)?;
        let shifted = z.broadcast_sub(&max)?;
        let log_sum = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
        let log_probs = shifted.broadcast_sub(&log_sum)?; // (n, V)
        let ce = log_probs.gather(&y.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?; // (n)
        let weight = weight_of(&ce, start)?;
        log_probs_out.extend(ce.neg()?.to_vec1::<f32>()?);
        weighted_sum += f64::from((&weight * &ce)?.sum_all()?.to_scalar::<f32>()?);
        cross_entropy_sum += f64::from(ce.sum_all()?.to_scalar::<f32>()?);
        // w/N · (softmax(z)·W − W[y])
        let expected = log_probs
            .exp()?
            .to_dtype(compute)?
            .matmul(&head)?
            .to_dtype(DType::F32)?;
        let target_rows = head.index_select(&y, 0)?.to_dtype(DType::F32)?;
        let scale = (weight / normaliser as f64)?.unsqueeze(1)?;
        grads.push((expected - target_rows)?.broadcast_mul(&scale)?);
    }
    Ok(HeadLoss {
        weighted_sum,
        cross_entropy_sum,
        log_probs: log_probs_out,
        hidden_grad: Tensor::cat(&grads, 0)?,
    })
}

/// `Σ hidden · grad` with `grad` held constant: its backward pass gives every trainable tensor
/// behind `hidden` exactly the gradient of the loss whose gradient with respect to `hidden` is
/// `grad` (candle's `backward` starts from a scalar only). One operation: its backward hands
/// `grad` (times the scalar's own gradient) straight to `hidden`, where the product and sum
/// of candle's operations would make two products and two zero-initialised sums of `hidden`'s
/// size; its value is summed by rows first (candle sums a whole tensor to a scalar in one
/// block).
pub fn surrogate(hidden: &Tensor, grad: &Tensor) -> Result<Tensor> {
    if hidden.dims() != grad.dims() {
        candle_core::bail!(
            "surrogate: a gradient of {:?} for {:?}",
            grad.dims(),
            hidden.dims()
        );
    }
    let grad = grad.detach().to_dtype(DType::F32)?;
    let product = hidden.detach().to_dtype(DType::F32)?.mul(&grad)?;
    let value = match product.rank() {
        0 => product,
        _ => product.sum_keepdim(D::Minus1)?.sum_all()?,
    };
    hidden.apply_op1(Surrogate {
        grad,
        value: super::ops::Computed::new(value),
    })
}

/// [`surrogate`]'s operation: the value computed beforehand, the constant gradient kept.
struct Surrogate {
    grad: Tensor,
    value: super::ops::Computed,
}

impl candle_core::CustomOp1 for Surrogate {
    fn name(&self) -> &'static str {
        "surrogate"
    }

    super::ops::computed_forward!(1, value, "surrogate");

    fn bwd(&self, hidden: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let scaled = self.grad.broadcast_mul(&grad.to_dtype(DType::F32)?)?;
        Ok(Some(scaled.to_dtype(hidden.dtype())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(shape: (usize, usize), seed: u64) -> Tensor {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let values: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| rng.random_range(-1.5..1.5))
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// The loss written densely with differentiable operations (full logits), and the gradient
    /// autograd gives for the hidden states.
    fn dense(h: &Tensor, y: &[u32], w: &Tensor, kind: LossKind, n: usize) -> (f64, Tensor) {
        let var = Var::from_tensor(h).unwrap();
        let z = var.as_tensor().matmul(&w.t().unwrap()).unwrap();
        let max = z.max_keepdim(D::Minus1).unwrap().detach();
        let shifted = z.broadcast_sub(&max).unwrap();
        let lse = shifted
            .exp()
            .unwrap()
            .sum_keepdim(D::Minus1)
            .unwrap()
            .log()
            .unwrap();
        let log_probs = shifted.broadcast_sub(&lse).unwrap();
        let y = Tensor::new(y, &Device::Cpu).unwrap().unsqueeze(1).unwrap();
        let ce = log_probs
            .gather(&y, 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
            .neg()
            .unwrap();
        let weight = match kind {
            LossKind::Dft => ce.neg().unwrap().exp().unwrap().detach(),
            LossKind::CrossEntropy => ce.ones_like().unwrap(),
        };
        let loss = ((weight * &ce).unwrap().sum_all().unwrap() / n as f64).unwrap();
        let grads = loss.backward().unwrap();
        let value = f64::from(loss.to_scalar::<f32>().unwrap());
        (value, grads.get(var.as_tensor()).unwrap().clone())
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
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn chunked_loss_and_gradient_equal_the_dense_computation() {
        let (h, w) = (random((9, 6), 1), random((13, 6), 2));
        let y: Vec<u32> = (0..9).map(|k| (k * 5 + 3) % 13).collect();
        for kind in [LossKind::Dft, LossKind::CrossEntropy] {
            // N counts the whole accumulated batch: more than these 9 positions.
            let (value, grad) = dense(&h, &y, &w, kind, 20);
            for chunk in [1, 4, 9, 64] {
                let got = head_loss(&h, &y, &w, kind, 20, chunk).unwrap();
                let loss = got.weighted_sum / 20.0;
                assert!(
                    (loss - value).abs() < 1e-5,
                    "{kind:?} chunk {chunk}: {loss} vs {value}"
                );
                let diff = max_diff(&got.hidden_grad, &grad);
                assert!(
                    diff < 1e-5,
                    "{kind:?} chunk {chunk}: gradient differs by {diff}"
                );
            }
        }
        // DFT weighs confident tokens more: its loss is below plain cross-entropy's.
        let dft = head_loss(&h, &y, &w, LossKind::Dft, 9, 4).unwrap();
        let ce = head_loss(&h, &y, &w, LossKind::CrossEntropy, 9, 4).unwrap();
        assert!(dft.weighted_sum < ce.weighted_sum);
        assert!((dft.cross_entropy_sum - ce.weighted_sum).abs() < 1e-4);
    }

    #[test]
    fn given_weights_weigh_each_token_and_log_probs_are_reported() {
        let (h, w) = (random((7, 5), 8), random((12, 5), 9));
        let y: Vec<u32> = (0..7).map(|k| (k * 7 + 2) % 12).collect();
        // The DFT weights given explicitly reproduce the DFT loss.
        let dft = head_loss(&h, &y, &w, LossKind::Dft, 7, 3).unwrap();
        let probabilities: Vec<f64> = dft.log_probs.iter().map(|&l| f64::from(l).exp()).collect();
        let given = head_loss_weighted(&h, &y, &w, &probabilities, 7, 2).unwrap();
        assert!((given.weighted_sum - dft.weighted_sum).abs() < 1e-5);
        assert!(max_diff(&given.hidden_grad, &dft.hidden_grad) < 1e-6);
        // log π = −ce, per position.
        let total: f64 = dft.log_probs.iter().map(|&l| -f64::from(l)).sum();
        assert!((total - dft.cross_entropy_sum).abs() < 1e-4);
        assert!(dft.log_probs.iter().all(|&l| l < 0.0));
        // Signed weights (a policy gradient): the gradient is the weighted sum of each
        // position's cross-entropy gradient, position by position.
        let signed = [0.5, -1.0, 2.0, 0.0, -0.25, 1.5, -3.0];
        let got = head_loss_weighted(&h, &y, &w, &signed, 1, 4).unwrap();
        let plain = head_loss(&h, &y, &w, LossKind::CrossEntropy, 1, 4).unwrap();
        let scale = Tensor::new(&signed.map(|x| x as f32), &Device::Cpu)
            .unwrap()
            .unsqueeze(1)
            .unwrap();
        let want = plain.hidden_grad.broadcast_mul(&scale).unwrap();
        assert!(max_diff(&got.hidden_grad, &want) < 1e-6);
        assert!(head_loss_weighted(&h, &y, &w, &signed[..3], 1, 4).is_err());
    }

    #[test]
    fn the_surrogate_carries_the_gradient_into_what_made_the_hidden_states() {
        // hidden = x · Aᵀ with A trainable: the surrogate's gradient for A equals the dense
        // loss's.
        let (x, a0, w) = (random((5, 4), 3), random((6, 4), 4), random((11, 6), 5));
        let y = [1u32, 7, 3, 10, 0];
        let a = Var::from_tensor(&a0).unwrap();
        let hidden = x.matmul(&a.as_tensor().t().unwrap()).unwrap();
        let loss = head_loss(&hidden, &y, &w, LossKind::Dft, 5, 2).unwrap();
        let grads = surrogate(&hidden, &loss.hidden_grad)
            .unwrap()
            .backward()
            .unwrap();
        let got = grads.get(a.as_tensor()).unwrap();
        // Dense: the same loss through full logits, differentiated with respect to A.
        let a2 = Var::from_tensor(&a0).unwrap();
        let z = x
            .matmul(&a2.as_tensor().t().unwrap())
            .unwrap()
            .matmul(&w.t().unwrap())
            .unwrap();
        let log_probs = candle_nn::ops::log_softmax(&z, D::Minus1).unwrap();
        let yt = Tensor::new(&y, &Device::Cpu).unwrap().unsqueeze(1).unwrap();
        let ce = log_probs
            .gather(&yt, 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
            .neg()
            .unwrap();
        let p = ce.neg().unwrap().exp().unwrap().detach();
        let dense = ((p * ce).unwrap().sum_all().unwrap() / 5.0).unwrap();
        let want = dense.backward().unwrap();
        let diff = max_diff(got, want.get(a2.as_tensor()).unwrap());
        assert!(diff < 1e-5, "gradient for A differs by {diff}");
    }

    #[test]
    fn bad_arguments_are_refused() {
        let (h, w) = (random((3, 4), 6), random((5, 4), 7));
        assert!(head_loss(&h, &[1, 2], &w, LossKind::Dft, 3, 2).is_err());
        assert!(head_loss(&h, &[1, 2, 3], &w, LossKind::Dft, 0, 2).is_err());
        assert!(head_loss(&h, &[1, 2, 3], &w, LossKind::Dft, 3, 0).is_err());
    }
}
