//! The optimiser side of training, as PyTorch and transformers define it (LAMAR trains with
//! their defaults): AdamW with decoupled weight decay (`torch.optim.AdamW`), global-norm gradient
//! clipping (`torch.nn.utils.clip_grad_norm_`) and the linear warm-up then cosine learning-rate
//! schedule (`transformers.get_cosine_schedule_with_warmup`, warm-up steps `⌈ratio · total⌉`).
//! The moments are plain tensors, so a checkpoint can hold them ([`AdamW::moments`]).

use candle_core::{Result, Tensor, Var};

/// AdamW's hyper-parameters (PyTorch's defaults but the learning rate, which the schedule
/// gives each step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// `β₁`.
    pub beta1: f64,
    /// `β₂`.
    pub beta2: f64,
    /// `ε`, added to `√v̂`.
    pub eps: f64,
    /// Decoupled weight decay `λ`: each step multiplies the parameter by `1 − lr·λ` first.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// AdamW over a fixed list of variables.
pub struct AdamW {
    config: AdamWConfig,
    /// Steps taken.
    step: u64,
    /// First and second moments, one pair per variable.
    moments: Vec<(Tensor, Tensor)>,
}

impl AdamW {
    /// An optimiser for `vars` (moments start at zero).
    pub fn new(vars: &[&Var], config: AdamWConfig) -> Result<AdamW> {
        let moments = vars
            .iter()
            .map(|v| Ok((v.zeros_like()?, v.zeros_like()?)))
            .collect::<Result<_>>()?;
        Ok(AdamW {
            config,
            step: 0,
            moments,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The moments `(m, v)` per variable, in order (for checkpoints).
    pub fn moments(&self) -> &[(Tensor, Tensor)] {
        &self.moments
    }

    /// Restores the step count and moments of a checkpoint.
    pub fn restore(&mut self, step: u64, moments: Vec<(Tensor, Tensor)>) -> Result<()> {
        if moments.len() != self.moments.len() {
            candle_core::bail!(
                "{} moment pairs for {} variables",
                moments.len(),
                self.moments.len()
            );
        }
        self.step = step;
        self.moments = moments;
        Ok(())
    }

    /// One step with learning rate `lr`: `grads[k]` is the gradient of `vars[k]`.
    pub fn step(&mut self, vars: &[&Var], grads: &[Tensor], lr: f64) -> Result<()> {
        self.step_scaled(vars, grads, lr, 1.0)
    }

    /// One step with the gradients multiplied by `grad_scale` first (the clipping factor of
    /// [`clip_factor`], applied as `clip_grad_norm_` applies it in place). On CUDA, with f32
    /// variables, each variable is updated in one kernel (`kernels::adamw`); elsewhere with
    /// candle operations (the reference).
    pub fn step_scaled(
        &mut self,
        vars: &[&Var],
        grads: &[Tensor],
        lr: f64,
        grad_scale: f64,
    ) -> Result<()> {
        if vars.len() != self.moments.len() || grads.len() != vars.len() {
            candle_core::bail!(
                "{} variables and {} gradients for an optimiser of {}",
                vars.len(),
                grads.len(),
                self.moments.len()
            );
        }
        self.step += 1;
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        let t = self.step as i32;
        let (correction1, correction2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
        #[cfg(feature = "cuda")]
        if fused(vars, grads) {
            let scalars = crate::kernels::adamw::AdamWScalars {
                grad_scale,
                beta1,
                beta2,
                eps,
                decay: 1.0 - lr * weight_decay,
                step_size: lr / correction1,
                correction2_sqrt: correction2.sqrt(),
            };
            for ((var, grad), (m, v)) in vars.iter().zip(grads).zip(&self.moments) {
                crate::kernels::adamw::adamw_in_place(var.as_tensor(), grad, m, v, &scalars)?;
            }
            return Ok(());
        }
        for ((var, grad), (m, v)) in vars.iter().zip(grads).zip(self.moments.iter_mut()) {
            let scaled;
            let grad = if grad_scale == 1.0 {
                grad
            } else {
                scaled = (grad * grad_scale)?;
                &scaled
            };
            *m = ((&*m * beta1)? + (grad * (1.0 - beta1))?)?;
            *v = ((&*v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let decayed = (var.as_tensor() * (1.0 - lr * weight_decay))?;
            let denominator = ((v.sqrt()? / correction2.sqrt())? + eps)?;
            let update = ((&*m / denominator)? * (lr / correction1))?;
            var.set(&(decayed - update)?)?;
        }
        Ok(())
    }
}

/// Whether the fused CUDA kernels take these tensors: all f32 on CUDA.
#[cfg(feature = "cuda")]
fn fused<'a>(vars: &[&Var], others: impl IntoIterator<Item = &'a Tensor>) -> bool {
    let ok = |t: &Tensor| t.device().is_cuda() && t.dtype() == candle_core::DType::F32;
    vars.iter().all(|v| ok(v.as_tensor())) && others.into_iter().all(ok)
}

/// The global L2 norm of `grads`, as `clip_grad_norm_` computes it before clipping. On CUDA
/// (f32) the squares are summed on the device and read back once; elsewhere per tensor.
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    #[cfg(feature = "cuda")]
    if !grads.is_empty() && fused(&[], grads) {
        let contiguous: Vec<Tensor> = grads
            .iter()
            .map(|g| {
                if g.is_contiguous() {
                    Ok(g.clone())
                } else {
                    g.contiguous()
                }
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = contiguous.iter().collect();
        return Ok(crate::kernels::adamw::sum_of_squares(&refs)?.sqrt());
    }
    let mut sum = 0f64;
    for g in grads {
        sum += g
            .sqr()?
            .sum_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
    }
    Ok(sum.sqrt())
}

/// The factor `clip_grad_norm_` scales gradients of global norm `norm` by:
/// `max_norm / (norm + 1e-6)` when that is below 1, else 1.
pub fn clip_factor(norm: f64, max_norm: f64) -> f64 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// Scales `grads` down so that their global L2 norm is at most `max_norm` (as
/// `clip_grad_norm_`: by [`clip_factor`]); returns the norm before clipping.
pub fn clip_global_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let norm = global_norm(grads)?;
    let coefficient = clip_factor(norm, max_norm);
    if coefficient < 1.0 {
        for g in grads.iter_mut() {
            *g = (&*g * coefficient)?;
        }
    }
    Ok(norm)
}

/// Warm-up steps for a ratio of the total, as transformers counts them (`⌈ratio · total⌉`).
pub fn warmup_steps(total: usize, ratio: f64) -> usize {
    (total as f64 * ratio).ceil() as usize
}

/// The learning-rate factor at optimiser step `step` (0-based): linear warm-up from 0 over
/// `warmup` steps, then half a cosine down to 0 at `total`.
pub fn warmup_cosine(step: usize, total: usize, warmup: usize) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
    (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// AdamW for one scalar, written out as PyTorch's `_single_tensor_adamw` does it.
    fn scalar_adamw(p0: f64, grads: &[f64], lrs: &[f64], c: AdamWConfig) -> f64 {
        let (mut p, mut m, mut v) = (p0, 0.0, 0.0);
        for (t, (g, lr)) in grads.iter().zip(lrs).enumerate() {
            let t = (t + 1) as i32;
            p *= 1.0 - lr * c.weight_decay;
            m = c.beta1 * m + (1.0 - c.beta1) * g;
            v = c.beta2 * v + (1.0 - c.beta2) * g * g;
            let bias1 = 1.0 - c.beta1.powi(t);
            let bias2 = 1.0 - c.beta2.powi(t);
            let denom = v.sqrt() / bias2.sqrt() + c.eps;
            p -= lr / bias1 * m / denom;
        }
        p
    }

    #[test]
    fn adamw_steps_as_pytorch_defines_them() {
        let config = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let start = [0.5f64, -1.25, 2.0];
        let var = Var::from_tensor(&Tensor::new(&start, &Device::Cpu).unwrap()).unwrap();
        let mut opt = AdamW::new(&[&var], config).unwrap();
        let grads = [[0.3, -0.2, 1.5], [0.1, 0.4, -0.7], [-0.5, 0.05, 0.2]];
        let lrs = [1e-2, 5e-3, 2e-3];
        for (g, lr) in grads.iter().zip(lrs) {
            let g = Tensor::new(g, &Device::Cpu).unwrap();
            opt.step(&[&var], &[g], lr).unwrap();
        }
        assert_eq!(opt.steps(), 3);
        let got: Vec<f64> = var.as_tensor().to_vec1().unwrap();
        for k in 0..3 {
            let column: Vec<f64> = grads.iter().map(|g| g[k]).collect();
            let want = scalar_adamw(start[k], &column, &lrs, config);
            assert!((got[k] - want).abs() < 1e-12, "{k}: {} vs {want}", got[k]);
        }
    }

    #[test]
    fn a_scaled_step_equals_clipping_the_gradients_first() {
        let config = AdamWConfig::default();
        let start = Tensor::new(&[0.5f64, -1.25, 2.0], &Device::Cpu).unwrap();
        let (a, b) = (
            Var::from_tensor(&start).unwrap(),
            Var::from_tensor(&start).unwrap(),
        );
        let (mut opt_a, mut opt_b) = (
            AdamW::new(&[&a], config).unwrap(),
            AdamW::new(&[&b], config).unwrap(),
        );
        for (g, max_norm) in [([3.0, -4.0, 12.0], 1.0), ([0.1, 0.2, -0.2], 5.0)] {
            let g = Tensor::new(&g, &Device::Cpu).unwrap();
            let mut clipped = vec![g.clone()];
            let norm = clip_global_norm(&mut clipped, max_norm).unwrap();
            opt_a.step(&[&a], &clipped, 1e-2).unwrap();
            let factor = clip_factor(global_norm(std::slice::from_ref(&g)).unwrap(), max_norm);
            assert_eq!(
                factor < 1.0,
                norm > max_norm,
                "clips exactly when over the limit"
            );
            opt_b.step_scaled(&[&b], &[g], 1e-2, factor).unwrap();
        }
        let (got_a, got_b): (Vec<f64>, Vec<f64>) = (
            a.as_tensor().to_vec1().unwrap(),
            b.as_tensor().to_vec1().unwrap(),
        );
        assert_eq!(got_a, got_b);
        assert_ne!(
            got_a,
            start.to_vec1::<f64>().unwrap(),
            "the steps moved the parameters"
        );
    }

    #[test]
    fn clipping_scales_the_global_norm_down_only() {
        let mut grads = vec![
            Tensor::new(&[3.0f64, 0.0], &Device::Cpu).unwrap(),
            Tensor::new(&[0.0f64, 4.0], &Device::Cpu).unwrap(),
        ];
        let norm = clip_global_norm(&mut grads, 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-12);
        let after: f64 = grads
            .iter()
            .map(|g| {
                g.sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            })
            .sum::<f64>()
            .sqrt();
        assert!((after - 5.0 / (5.0 + 1e-6)).abs() < 1e-9);
        let norm = clip_global_norm(&mut grads, 10.0).unwrap();
        assert!((norm - after).abs() < 1e-12, "no change under the limit");
    }

    #[test]
    fn the_schedule_warms_up_then_follows_half_a_cosine() {
        let (total, warmup) = (100, warmup_steps(100, 0.05));
        assert_eq!(warmup, 5);
        assert_eq!(warmup_steps(87, 0.05), 5); // ⌈4.35⌉
        assert_eq!(warmup_cosine(0, total, warmup), 0.0);
        assert!((warmup_cosine(2, total, warmup) - 0.4).abs() < 1e-12);
        assert_eq!(warmup_cosine(5, total, warmup), 1.0);
        let middle = warmup_cosine(5 + 95 / 2, total, warmup);
        assert!((middle - 0.5 * (1.0 + (std::f64::consts::PI * 47.0 / 95.0).cos())).abs() < 1e-12);
        assert!(warmup_cosine(100, total, warmup).abs() < 1e-12);
        let factors: Vec<f64> = (5..=100).map(|s| warmup_cosine(s, total, warmup)).collect();
        assert!(
            factors.windows(2).all(|w| w[1] <= w[0]),
            "decreasing after warm-up"
        );
    }
}
