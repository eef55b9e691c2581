//! Continuous batching: a fixed number of sequence slots decode together, and a slot whose
//! sequence finishes takes the next waiting prompt at once, instead of idling until the whole
//! batch is done.
//!
//! Decoding on a GPU costs nearly the same per step at batch 1 and batch 32 (the step is bound
//! by kernel launches and weight reads, BENCHMARKS.md), so keeping the slots full is most of
//! the throughput on documents of different lengths.
//!
//! How a prompt joins a running batch: it is prefilled alone, its first token is drawn from its
//! own logits, and its caches are put into the free row ([`Cache::admit`]): DeltaNet state and
//! convolution history are per row already; its keys and values are written so that they end
//! at the batch's current column, the columns before them becoming padding of that row (rows
//! are left-padded, as in a static batch). A prompt longer than the batch's history shifts all
//! rows right first. Columns that have become padding in every row are dropped from time to
//! time ([`Cache::trim_padding`]), so attention does not run over a growing history of finished
//! sequences. Positions are counted per row, so none of this moves a token's rotary angle.
//!
//! A prompt waiting right after an identical one (GRPO samples a group of completions of one
//! prompt) is not prefilled again: the first one's cache is duplicated ([`Cache::duplicate`])
//! and its last logits drawn from anew, which is what a second prefill would give.

use super::cache::Cache;
use super::generate::{Decoding, Generation};
use super::graph::GREEDY_STEPS;
use super::model::Qwen35Model;
use crate::sampling::Sampler;
use candle_core::{Device, Result, Tensor};
use std::collections::VecDeque;

/// One slot's sequence.
struct Slot {
    /// Index of its prompt.
    request: usize,
    /// Its next input token.
    next: u32,
    /// What it has generated so far.
    generation: Generation,
}

impl Qwen35Model {
    /// Generates for every prompt with at most `slots` sequences decoding at a time, admitting
    /// waiting prompts (in the given order) as soon as a slot frees. `done` receives each
    /// prompt's index and generation the moment it finishes; `progress` the number of tokens
    /// each decoding step produced. With greedy decoding every sequence gets what it would get
    /// alone.
    #[allow(clippy::too_many_arguments)]
    pub fn generate_continuous(
        &self,
        prompts: &[Vec<u32>],
        limits: &[usize],
        slots: usize,
        decoding: &Decoding,
        sampler: &mut Sampler,
        device: &Device,
        mut done: impl FnMut(usize, Generation) -> Result<()>,
        mut progress: impl FnMut(usize),
    ) -> Result<()> {
        if limits.len() != prompts.len() {
            candle_core::bail!(
                "{} prompts but {} token limits",
                prompts.len(),
                limits.len()
            );
        }
        if prompts.iter().any(Vec::is_empty) {
            candle_core::bail!("every prompt needs at least one token");
        }
        let slots = slots.max(1);
        // Key/value room after a prompt: the longest limit, and the steps a greedy graph may
        // take past it.
        let room = limits.iter().copied().max().unwrap_or(0) + GREEDY_STEPS;
        let mut waiting = (0..prompts.len()).rev().collect::<Vec<_>>(); // next on top
        let mut running: Vec<Option<Slot>> = Vec::new();
        let mut graphs = self.graph_slot();
        let mut cache: Option<Cache> = None;
        // Rows were added, replaced or removed since the last look for shared padding.
        let mut reshaped = false;
        // Steps already computed for the current rows (greedy decoding computes several at a
        // time: `decode_greedy_graphed`), oldest first. Rows are only admitted or dropped when
        // none are left, so that every row's cache matches its tokens.
        let mut picks: VecDeque<(Vec<u32>, Vec<f32>)> = VecDeque::new();
        // The last prompt prefilled, kept while the next waiting prompt is the same: its
        // request, its cache (a copy of its own) and its last logits.
        let mut shared: Option<(usize, Cache, Tensor)> = None;
        loop {
            if let Some((tokens, log_probs)) = picks.pop_front() {
                progress(running.iter().flatten().count());
                for (row, slot) in running.iter_mut().enumerate() {
                    let Some(s) = slot else { continue };
                    let limit = limits[s.request];
                    if s.generation
                        .push(tokens[row], log_probs[row], decoding.stop, limit)
                    {
                        s.next = tokens[row];
                    } else if let Some(finished) = slot.take() {
                        done(finished.request, finished.generation)?;
                    }
                }
                if !picks.is_empty() && running.iter().any(Option::is_some) {
                    continue;
                }
                picks.clear();
            }
            // Fill free slots (and start the batch) from the waiting prompts.
            while running.iter().filter(|s| s.is_some()).count() < slots {
                let Some(request) = waiting.pop() else { break };
                if limits[request] == 0 {
                    done(request, Generation::default())?;
                    continue;
                }
                let prompt = &prompts[request];
                let reuse = shared
                    .take()
                    .filter(|(earlier, _, _)| prompts[*earlier] == *prompt);
                let (one, logits, kept) = match reuse {
                    Some((earlier, kept, logits)) => (
                        kept.duplicate()?,
                        logits.clone(),
                        Some((earlier, kept, logits)),
                    ),
                    None => {
                        let ids = Tensor::from_vec(prompt.clone(), (1, prompt.len()), device)?;
                        let mut one = self.new_cache();
                        one.reserve(prompt.len() + room);
                        let logits = self.forward_last(&ids, None, &mut one)?;
                        (one, logits, None)
                    }
                };
                if waiting.last().is_some_and(|&next| prompts[next] == *prompt) {
                    shared = match kept {
                        Some(kept) => Some(kept),
                        None => Some((request, one.duplicate()?, logits.clone())),
                    };
                }
                let (tokens, log_probs) = sampler.next(&logits)?;
                progress(1);
                let mut generation = Generation::default();
                if !generation.push(tokens[0], log_probs[0], decoding.stop, limits[request]) {
                    done(request, generation)?;
                    continue;
                }
                let slot = Slot {
                    request,
                    next: tokens[0],
                    generation,
                };
                reshaped = true;
                match (&mut cache, running.iter().position(Option::is_none)) {
                    (Some(c), Some(free)) => {
                        c.admit(free, &one, room)?;
                        running[free] = Some(slot);
                    }
                    (Some(c), None) => {
                        // One more row: an empty one (all padding), then the newcomer in it.
                        let row = running.len();
                        c.push_empty_row()?;
                        c.admit(row, &one, room)?;
                        running.push(Some(slot));
                    }
                    (None, _) => {
                        cache = Some(one);
                        running.push(Some(slot));
                    }
                }
            }
            // Drop empty rows; stop when nothing is left.
            let keep: Vec<usize> = (0..running.len())
                .filter(|&r| running[r].is_some())
                .collect();
            if keep.is_empty() {
                break;
            }
            let Some(c) = cache.as_mut() else { break };
            if keep.len() < running.len() {
                c.retain(&keep)?;
                running = keep.into_iter().map(|r| running[r].take()).collect();
                reshaped = true;
            }
            if std::mem::take(&mut reshaped) {
                c.trim_padding(room)?;
            }
            // Decoding step(s) for every running sequence.
            let next: Vec<u32> = running.iter().flatten().map(|s| s.next).collect();
            picks.extend(self.decode_picks(&next, c, &mut graphs, sampler)?);
        }
        Ok(())
    }
}
