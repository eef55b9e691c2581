//! Generation from prompts: static batching ([`Qwen35Model::generate_each`]: left-padded
//! prompts prefilled in groups of rows, decoded together, the batch shrinking as sequences
//! finish), the per-prompt result ([`Generation`]) and the decoding settings ([`Decoding`]).
//! Continuous batching builds on the same pieces in [`super::continuous`].

use super::cache::Cache;
use super::graph::GREEDY_STEPS;
use super::model::Qwen35Model;
use crate::sampling::{Sampler, SamplingParams};
use candle_core::{Device, Result, Tensor};
use std::collections::VecDeque;

impl Qwen35Model {
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
