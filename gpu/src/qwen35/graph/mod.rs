//! CUDA graphs for decoding: one step (one new token per row) is captured once and replayed,
//! so that the host no longer enqueues several hundred kernels per token (decoding one token
//! at a time is bound by the host's launches otherwise: BENCHMARKS.md).
//!
//! A replay reuses every device address of the capture, so the step reads what changes from
//! buffers the graph owns: token ids, positions, `[column, length]` of the key/value buffers and
//! the attention bias `(B, 1, 1, capacity)` (−1e30 for padding and for columns not yet written;
//! the attention prologue opens each new column). The layers' own state lives in the cache at
//! fixed addresses: key/value buffers with room reserved, DeltaNet state and convolution history
//! updated in place by the fused kernels. Whatever else a step allocates is allocated and freed
//! inside the graph. The host-side bookkeeping of the cache (lengths, positions, which columns
//! are real) is advanced after each replay, as an eager step would.
//!
//! A graph belongs to one batch size and one set of cache buffers (their device addresses);
//! when rows leave the batch or the buffers grow, the next step captures a new one.

#[cfg(feature = "cuda")]
mod capture;

use super::cache::Cache;
use super::model::Qwen35Model;
use crate::sampling::{Sampler, SamplingParams};
use candle_core::{Result, Tensor};

impl Qwen35Model {
    /// A [`GraphSlot`] for one generation, capturing graphs when they are turned on
    /// ([`Qwen35Model::set_cuda_graphs`]).
    pub fn graph_slot(&self) -> GraphSlot {
        GraphSlot::new(self.cuda_graphs)
    }

    /// Logits `(B, vocab)` of one decoding step (one new token per row, no padding): through a
    /// CUDA graph when the model and cache allow it (captured into `slot` on first use and
    /// whenever the batch or the cache buffers changed), else as an eager
    /// [`Qwen35Model::forward_last`] (always on the CPU). The returned tensor may be the
    /// graph's own buffer: read it before the next step. A capture that fails leaves the slot
    /// without a graph, records why ([`GraphSlot::failure`]) and the steps run eagerly.
    pub fn decode_step_graphed(
        &self,
        tokens: &[u32],
        cache: &mut Cache,
        slot: &mut GraphSlot,
    ) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        {
            self.decode_step_cuda(tokens, cache, slot)
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = slot;
            let device = self.embed.embeddings().device().clone();
            let ids = Tensor::from_vec(tokens.to_vec(), (tokens.len(), 1), &device)?;
            self.forward_last(&ids, None, cache)
        }
    }
}

impl Qwen35Model {
    /// Greedy decoding: up to `steps` steps for every row, starting from `tokens`, as one CUDA
    /// graph whose steps each end with the greedy choice (made on the device and fed to the
    /// next step there), so the host waits once per `steps` tokens instead of once per token.
    /// Returns each step's tokens and log-probabilities: `steps` of them, or one on CUDA when
    /// the graph cannot be used (its warm-up step, a full cache), where the eager step is picked
    /// greedily ([`Sampler`] at temperature 0, as it is for every step on the CPU). Every row
    /// takes all the returned steps: a caller whose row stopped earlier ignores that row's later
    /// tokens. Callers reserve `steps` extra key/value columns, so that a graph fits to the end.
    pub fn decode_greedy_graphed(
        &self,
        tokens: &[u32],
        cache: &mut Cache,
        slot: &mut GraphSlot,
        steps: usize,
    ) -> Result<Vec<(Vec<u32>, Vec<f32>)>> {
        #[cfg(feature = "cuda")]
        let logits = match self.decode_cuda(tokens, cache, slot, capture::Ending::Greedy(steps))? {
            capture::Decoded::Picks(picks) => return Ok(picks),
            capture::Decoded::Logits(logits) => logits,
        };
        let mut greedy = Sampler::new(SamplingParams::default());
        #[cfg(feature = "cuda")]
        return Ok(vec![greedy.next(&logits)?]);
        #[cfg(not(feature = "cuda"))]
        {
            let mut picks = Vec::with_capacity(steps);
            let mut next = tokens.to_vec();
            for _ in 0..steps.max(1) {
                let logits = self.decode_step_graphed(&next, cache, slot)?;
                let pick = greedy.next(&logits)?;
                next.clone_from(&pick.0);
                picks.push(pick);
            }
            Ok(picks)
        }
    }
}

impl Qwen35Model {
    /// The next decoding step(s) of generation for `tokens`, as tokens and log-probabilities
    /// per step: greedy samplers take [`GREEDY_STEPS`] at a time through
    /// [`Qwen35Model::decode_greedy_graphed`], others one step sampled on the host.
    pub(super) fn decode_picks(
        &self,
        tokens: &[u32],
        cache: &mut Cache,
        slot: &mut GraphSlot,
        sampler: &mut Sampler,
    ) -> Result<Vec<(Vec<u32>, Vec<f32>)>> {
        if sampler.is_greedy() {
            return self.decode_greedy_graphed(tokens, cache, slot, GREEDY_STEPS);
        }
        let logits = self.decode_step_graphed(tokens, cache, slot)?;
        Ok(vec![sampler.next(&logits)?])
    }
}

/// Steps per greedy decoding graph in generation ([`Qwen35Model::decode_greedy_graphed`]): the
/// host's turn between graphs (reading the tokens back, the next launch) is paid once per this
/// many tokens; a row that stops inside a graph costs the rest of its steps.
pub const GREEDY_STEPS: usize = 4;

/// Where a generation keeps its decoding graph between steps, and what happened to it.
#[derive(Default)]
pub struct GraphSlot {
    #[cfg(feature = "cuda")]
    graph: Option<capture::DecodeGraph>,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    enabled: bool,
    /// The identity of the buffers the last eager step ran with (a capture waits for one).
    #[cfg(feature = "cuda")]
    warmed: Option<Vec<u64>>,
    /// Why capturing failed (then every later step runs eagerly).
    pub failure: Option<String>,
    /// Graphs captured.
    pub captures: usize,
    /// Steps replayed through a graph.
    pub replays: usize,
}

impl GraphSlot {
    /// A slot that captures graphs (`enabled`) or never does.
    pub fn new(enabled: bool) -> GraphSlot {
        GraphSlot {
            enabled,
            ..GraphSlot::default()
        }
    }
}
