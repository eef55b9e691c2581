//! Choosing the next token from logits, on whatever device the logits live: greedy, or
//! temperature + nucleus (top-p) sampling without sorting the vocabulary (248k entries for
//! Qwen3.5; a full-row sort per step is what the issue rules out).
//!
//! * **Top-p** keeps the most probable tokens whose probabilities add up to at least `top_p`:
//!   the threshold `τ` (keep `p ≥ τ`) is found by bisection on the masked sum `Σ_{p ≥ τ} p`,
//!   a handful of O(V) reductions. Tokens tied at the threshold are all kept (a sort-based
//!   implementation keeps an arbitrary subset of them).
//! * **Sampling** uses the Gumbel-max trick: `argmax(log p + G)` with `G = −log(−log U)` is an
//!   exact draw from `p`, so no cumulative sum over the vocabulary is needed.
//! * Log-probabilities are those of the model's own distribution (temperature 1, untruncated):
//!   their negated mean is the "entropy" LAMAR ranks pseudo-labels by. GRPO's rollouts ask for
//!   those of the tempered distribution instead ([`Sampler::with_tempered_log_probs`]), the
//!   policy TRL trains.
//! * On CUDA, temperature sampling with min-p (top-p 1, GRPO's rollouts) runs as three of
//!   lamar's kernels (`kernels::sample::sample_min_p`) instead of about twenty-five candle
//!   operations; top-p keeps the operations below.

use candle_core::{D, DType, Device, Result, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How to choose tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f64,
    /// Nucleus size in (0, 1]; 1 keeps every token.
    pub top_p: f64,
    /// Min-p in [0, 1): tokens less probable than `min_p` times the most probable one (after
    /// the temperature) are dropped; 0 keeps every token. LAMAR's GRPO rollouts ask for 0.1.
    pub min_p: f64,
    /// Seed of the random draws.
    pub seed: u64,
}

impl Default for SamplingParams {
    /// Greedy.
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 0,
        }
    }
}

/// Draws tokens for a batch of logit rows, reproducibly for a seed.
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
    device_seeded: bool,
    tempered: bool,
    /// On CUDA, draw with lamar's sampling kernels where they apply (top-p 1); off, the candle
    /// operations below (the kernels' reference in their test).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) kernels: bool,
}

/// Bisection steps of the top-p threshold (the interval shrinks to 2⁻⁴⁰ of the largest
/// probability).
const BISECTION_STEPS: usize = 40;

impl Sampler {
    /// A sampler with its own random stream.
    pub fn new(params: SamplingParams) -> Sampler {
        Sampler {
            params,
            rng: ChaCha8Rng::seed_from_u64(params.seed),
            device_seeded: false,
            tempered: false,
            kernels: true,
        }
    }

    /// Reports log-probabilities under the tempered distribution, `log_softmax(logits / T)`
    /// (before top-p and min-p), instead of the model's own: GRPO's policy. At temperature 1,
    /// or greedy, nothing changes.
    pub fn with_tempered_log_probs(mut self) -> Sampler {
        self.tempered = true;
        self
    }

    /// Whether this sampler picks the largest logit (temperature 0): no random draws, so the
    /// choice can be made wherever the logits are (e.g. inside a CUDA graph).
    pub fn is_greedy(&self) -> bool {
        self.params.temperature <= 0.0
    }

    /// The next token of every row of `logits` `(B, V)`, and each token's log-probability
    /// under the model's untempered distribution (or the tempered one, see
    /// [`Sampler::with_tempered_log_probs`]).
    pub fn next(&mut self, logits: &Tensor) -> Result<(Vec<u32>, Vec<f32>)> {
        let (b, v) = logits.dims2()?;
        #[cfg(feature = "cuda")]
        if self.params.temperature <= 0.0 && logits.device().is_cuda() {
            // lamar's greedy kernel: same choice and log-probability, two launches.
            let both: Vec<f32> = crate::kernels::sample::greedy(logits)?.to_vec1()?;
            let tokens = both[..b].iter().map(|&t| t as u32).collect();
            return Ok((tokens, both[b..].to_vec()));
        }
        #[cfg(feature = "cuda")]
        if self.kernels && self.params.top_p >= 1.0 && logits.device().is_cuda() {
            // lamar's sampling kernels: the same draw from the same uniform numbers, three
            // launches.
            let noise = self.uniform(b, v, logits.device())?;
            let draw = crate::kernels::sample::MinPDraw {
                temperature: self.params.temperature,
                min_p: self.params.min_p,
                tempered: self.tempered,
            };
            let both: Vec<f32> =
                crate::kernels::sample::sample_min_p(logits, &noise, draw)?.to_vec1()?;
            let tokens = both[..b].iter().map(|&t| t as u32).collect();
            return Ok((tokens, both[b..].to_vec()));
        }
        let logits = logits.to_dtype(DType::F32)?;
        let chosen = if self.params.temperature <= 0.0 {
            logits.argmax(D::Minus1)?
        } else {
            let probs = candle_nn::ops::softmax_last_dim(&(&logits / self.params.temperature)?)?;
            let kept = if self.params.top_p < 1.0 {
                nucleus(&probs, self.params.top_p)?
            } else {
                probs
            };
            let kept = if self.params.min_p > 0.0 {
                min_p(&kept, self.params.min_p)?
            } else {
                kept
            };
            // Gumbel-max: argmax(log p + G); dropped tokens have log p = −∞.
            let noise = self.gumbel_noise(b, v, logits.device())?;
            (kept.log()? + noise)?.argmax(D::Minus1)?
        };
        let scored = if self.tempered && self.params.temperature > 0.0 {
            (&logits / self.params.temperature)?
        } else {
            logits
        };
        let log_probs = candle_nn::ops::log_softmax(&scored, D::Minus1)?
            .gather(&chosen.unsqueeze(1)?, 1)?
            .squeeze(1)?;
        // One device-to-host copy per step: ids (< 2²⁴, exact in f32) next to log-probabilities.
        let both: Vec<f32> =
            Tensor::cat(&[&chosen.to_dtype(DType::F32)?, &log_probs], 0)?.to_vec1()?;
        let tokens = both[..b].iter().map(|&t| t as u32).collect();
        Ok((tokens, both[b..].to_vec()))
    }

    /// Gumbel noise `−log(−log U)` `(B, V)`: drawn from the seeded ChaCha stream on the CPU;
    /// on a GPU drawn there (cuRAND, seeded once from the same seed), since copying 248k
    /// numbers a row each step would cost more than the model step.
    fn gumbel_noise(&mut self, b: usize, v: usize, device: &Device) -> Result<Tensor> {
        if device.is_cpu() {
            let noise: Vec<f32> = (0..b * v)
                .map(|_| {
                    let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
                    (-(-u.ln()).ln()) as f32
                })
                .collect();
            return Tensor::from_vec(noise, (b, v), device);
        }
        self.uniform(b, v, device)?.log()?.neg()?.log()?.neg()
    }

    /// Uniform numbers in `[10⁻²⁰, 1)` `(B, V)` drawn on a GPU (cuRAND, seeded once from the
    /// sampler's seed).
    fn uniform(&mut self, b: usize, v: usize, device: &Device) -> Result<Tensor> {
        if !self.device_seeded {
            device.set_seed(self.params.seed)?;
            self.device_seeded = true;
        }
        Tensor::rand(1e-20f32, 1.0, (b, v), device)
    }
}

/// `probs` `(B, V)` with every entry below `min_p` times its row's largest set to 0 (the most
/// probable token is always kept).
fn min_p(probs: &Tensor, min_p: f64) -> Result<Tensor> {
    let threshold = (probs.max_keepdim(D::Minus1)? * min_p)?;
    let keep = probs.broadcast_ge(&threshold)?.to_dtype(DType::F32)?;
    probs.mul(&keep)
}

/// `probs` `(B, V)` with everything outside each row's nucleus set to 0.
fn nucleus(probs: &Tensor, top_p: f64) -> Result<Tensor> {
    let (b, _) = probs.dims2()?;
    // Per row: lo keeps enough mass, hi does not (or keeps only the top token).
    let mut lo = Tensor::zeros((b, 1), DType::F32, probs.device())?;
    let mut hi = probs.max_keepdim(D::Minus1)?;
    for _ in 0..BISECTION_STEPS {
        let mid = ((&lo + &hi)? * 0.5)?;
        let mass = probs
            .broadcast_ge(&mid)?
            .to_dtype(DType::F32)?
            .mul(probs)?
            .sum_keepdim(D::Minus1)?;
        let enough = mass.ge(top_p)?;
        lo = enough.where_cond(&mid, &lo)?;
        hi = enough.where_cond(&hi, &mid)?;
    }
    // The most probable token is always kept (τ ≤ max p).
    let keep = probs.broadcast_ge(&lo)?.to_dtype(DType::F32)?;
    probs.mul(&keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn logits(rows: &[&[f32]]) -> Tensor {
        let v = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(flat, (rows.len(), v), &Device::Cpu).unwrap()
    }

    #[test]
    fn greedy_takes_the_maximum_and_reports_its_log_probability() {
        let l = logits(&[&[0.0, 2.0, 1.0], &[3.0, 0.0, 0.0]]);
        let (tokens, lp) = Sampler::new(SamplingParams::default()).next(&l).unwrap();
        assert_eq!(tokens, [1, 0]);
        let z: f32 = [0f32, 2.0, 1.0].iter().map(|x| x.exp()).sum();
        assert!((lp[0] - (2.0 - z.ln())).abs() < 1e-6);
    }

    #[test]
    fn the_nucleus_keeps_the_smallest_sufficient_set() {
        let probs = logits(&[&[0.5, 0.3, 0.15, 0.05]]);
        let keep = |p: f64| -> Vec<f32> {
            nucleus(&probs, p)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        assert_eq!(keep(0.5), [0.5, 0.0, 0.0, 0.0]);
        assert_eq!(keep(0.6), [0.5, 0.3, 0.0, 0.0]);
        assert_eq!(keep(0.9), [0.5, 0.3, 0.15, 0.0]);
        assert_eq!(keep(0.99), [0.5, 0.3, 0.15, 0.05]);
        assert_eq!(keep(1e-9), [0.5, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn samples_follow_the_tempered_distribution_and_repeat_with_the_seed() {
        let row: [f32; 4] = [1.0, 0.0, -1.0, 0.5];
        let l = logits(&[&row[..]; 8]);
        let params = SamplingParams {
            temperature: 0.7,
            top_p: 1.0,
            min_p: 0.0,
            seed: 3,
        };
        let mut sampler = Sampler::new(params);
        let mut counts = [0usize; 4];
        for _ in 0..500 {
            for t in sampler.next(&l).unwrap().0 {
                counts[t as usize] += 1;
            }
        }
        let z: f32 = row.iter().map(|x| (x / 0.7).exp()).sum();
        for (k, &c) in counts.iter().enumerate() {
            let want = (row[k] / 0.7).exp() / z;
            let got = c as f32 / 4000.0;
            assert!((got - want).abs() < 0.03, "token {k}: {got} vs {want}");
        }
        let again: Vec<u32> = Sampler::new(params).next(&l).unwrap().0;
        assert_eq!(again, Sampler::new(params).next(&l).unwrap().0);
        // A tiny nucleus is greedy.
        let tiny = SamplingParams {
            top_p: 1e-6,
            ..params
        };
        assert_eq!(Sampler::new(tiny).next(&l).unwrap().0, vec![0; 8]);
    }

    #[test]
    fn min_p_drops_tokens_far_below_the_most_probable() {
        let probs = logits(&[&[0.5, 0.3, 0.15, 0.05], &[0.25, 0.25, 0.25, 0.25]]);
        let kept: Vec<Vec<f32>> = min_p(&probs, 0.2).unwrap().to_vec2().unwrap();
        assert_eq!(kept[0], [0.5, 0.3, 0.15, 0.0]);
        assert_eq!(kept[1], [0.25; 4]);
        // Sampling with min-p 0.5 at temperature 1 never draws tokens 2 and 3 of the first row.
        let row: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        let l = logits(&[&row[..]; 16]);
        let mut sampler = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            min_p: 0.5,
            seed: 9,
        });
        let mut seen = [0usize; 4];
        for _ in 0..50 {
            for t in sampler.next(&l).unwrap().0 {
                seen[t as usize] += 1;
            }
        }
        assert_eq!((seen[2], seen[3]), (0, 0));
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }
}
