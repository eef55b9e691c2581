//! Capturing and replaying a decoding step (CUDA builds only).

use super::GraphSlot;
use crate::kernels::launch::{address, contiguous_address, cuda_device};
use crate::qwen35::cache::{Cache, LayerCache};
use crate::qwen35::model::Qwen35Model;
use crate::qwen35::step::Step;
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::sys::{
    CUgraphInstantiate_flags, CUstreamCaptureMode,
};
use candle_core::cuda_backend::cudarc::driver::{CudaGraph, result};
use candle_core::{DType, Device, Result, Tensor, bail};

/// What a captured graph computes after the layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// One step; its logits are left in the graph's buffer.
    Logits,
    /// This many steps, each ending with the greedy choice, which becomes the next step's
    /// input on the device (`kernels::sample::advance`).
    Greedy(usize),
}

impl Ending {
    fn steps(self) -> usize {
        match self {
            Ending::Logits => 1,
            Ending::Greedy(steps) => steps,
        }
    }
}

/// What a decoding call gives back.
pub(super) enum Decoded {
    /// The logits `(B, vocab)` of one step (an eager step, or a graph ending in logits).
    Logits(Tensor),
    /// Each step's greedy tokens and log-probabilities (a graph ending in greedy choices).
    Picks(Vec<(Vec<u32>, Vec<f32>)>),
}

/// A captured decoding step (or several) and the buffers it reads and writes.
pub struct DecodeGraph {
    graph: CudaGraph,
    ending: Ending,
    /// `(steps, 2B)` f32 for a greedy graph: each step's tokens (as floats) and log-probs.
    picks: Option<Tensor>,
    /// `(B, 1)` u32: the new tokens.
    ids: Tensor,
    /// `(B, 1)` f32: their positions.
    positions: Tensor,
    /// `(2)` u32: the key/value column the new token goes to, and the length after it.
    counters: Tensor,
    /// `(B, 1, 1, capacity)` f32 attention bias. Only the graph reads and writes it; held here
    /// so that its memory lives as long as the graph.
    #[allow(dead_code)]
    bias: Tensor,
    /// `(B, vocab)`: the step's logits.
    logits: Tensor,
    /// Device addresses of the cache buffers the capture used, and the batch size.
    identity: Vec<u64>,
}

/// Device address of a cache buffer (identity only, never dereferenced here).
fn storage_address(t: &Tensor) -> Result<u64> {
    Ok(address(t, t.dtype(), "cache buffer")?.0)
}

/// Writes host values into a contiguous device tensor (stream-ordered).
fn upload<T: candle_core::cuda_backend::cudarc::driver::DeviceRepr>(
    dst: &Tensor,
    values: &[T],
) -> Result<()> {
    if dst.elem_count() != values.len() || size_of::<T>() != dst.dtype().size_in_bytes() {
        bail!(
            "CUDA graph: upload of {} values into {:?} {:?}",
            values.len(),
            dst.dtype(),
            dst.dims()
        );
    }
    let address = contiguous_address(dst, dst.dtype(), "upload target")?;
    let stream = cuda_device(dst)?.cuda_stream();
    // SAFETY: `address` points at `values.len()` elements of `dst`'s size (checked above), and
    // the copy is ordered on the stream every kernel runs on.
    unsafe { result::memcpy_htod_async(address, values, stream.cu_stream()) }.w()
}

/// What identifies the cache a graph was captured for: the batch size, the cache's revision
/// (bumped by eager forward calls and row changes, which a graph's bias does not follow) and
/// every cache buffer's address. `None` when some layer has no state yet (no prefill).
fn cache_identity(cache: &Cache) -> Result<Option<Vec<u64>>> {
    let mut ids = vec![cache.next_position.len() as u64, cache.revision];
    for layer in &cache.layers {
        match layer {
            LayerCache::Attention(a) => {
                let Some((k, v)) = &a.buffers else {
                    return Ok(None);
                };
                ids.extend([storage_address(k)?, storage_address(v)?, k.dim(2)? as u64]);
            }
            LayerCache::DeltaNet(d) => {
                let (Some(conv), Some(state)) = (&d.conv, &d.state) else {
                    return Ok(None);
                };
                if !conv.is_contiguous() || !state.is_contiguous() {
                    return Ok(None);
                }
                ids.extend([storage_address(conv)?, storage_address(state)?]);
            }
        }
    }
    Ok(Some(ids))
}

/// The attention layers' common `(length, capacity)`, if they agree.
fn attention_extent(cache: &Cache) -> Option<(usize, usize)> {
    let mut extent = None;
    for layer in &cache.layers {
        if let LayerCache::Attention(a) = layer {
            let capacity = a.buffers.as_ref()?.0.dim(2).ok()?;
            match extent {
                None => extent = Some((a.len, capacity)),
                Some(e) if e != (a.len, capacity) => return None,
                _ => {}
            }
        }
    }
    extent
}

impl DecodeGraph {
    /// Whether this graph was captured with `cache`'s current buffers and batch size, to end
    /// as asked.
    fn matches(&self, identity: &[u64], ending: Ending) -> bool {
        self.identity == identity && self.ending == ending
    }
}

impl Qwen35Model {
    /// [`Qwen35Model::decode_step_graphed`] on a CUDA build.
    pub(super) fn decode_step_cuda(
        &self,
        tokens: &[u32],
        cache: &mut Cache,
        slot: &mut GraphSlot,
    ) -> Result<Tensor> {
        match self.decode_cuda(tokens, cache, slot, Ending::Logits)? {
            Decoded::Logits(logits) => Ok(logits),
            Decoded::Picks(_) => bail!("CUDA graph: a logits graph returned greedy picks"),
        }
    }

    /// One eager step (logits), or a graph's step(s) ending as asked.
    pub(super) fn decode_cuda(
        &self,
        tokens: &[u32],
        cache: &mut Cache,
        slot: &mut GraphSlot,
        ending: Ending,
    ) -> Result<Decoded> {
        let device = self.embed.embeddings().device().clone();
        let b = tokens.len();
        let steps = ending.steps();
        let eager = |cache: &mut Cache| -> Result<Decoded> {
            let ids = Tensor::from_vec(tokens.to_vec(), (b, 1), &device)?;
            Ok(Decoded::Logits(self.forward_last(&ids, None, cache)?))
        };
        if !slot.enabled || slot.failure.is_some() || !device.is_cuda() || !self.graphable(b) {
            return eager(cache);
        }
        let Some((len, capacity)) = attention_extent(cache) else {
            return eager(cache);
        };
        let Some(identity) = cache_identity(cache)? else {
            return eager(cache);
        };
        if steps == 0
            || len + steps > capacity
            || cache.next_position.len() != b
            || cache.seen.is_none()
        {
            slot.graph = None;
            return eager(cache); // grows the buffers; the next step captures anew
        }
        if !slot
            .graph
            .as_ref()
            .is_some_and(|g| g.matches(&identity, ending))
        {
            slot.graph = None;
            if slot.warmed.as_deref() != Some(&identity[..]) {
                // One eager step first with these buffers, so that every kernel module is
                // loaded (and cuBLAS has chosen its kernels) before a capture, and candle's
                // small uploads (layouts of strided operations) are cached: a capture may not
                // copy from the host, and candle serves the same bytes from this cache then.
                let Device::Cuda(cuda) = &device else {
                    return eager(cache);
                };
                let _cached = cuda.enable_cuda_graph_htod_cache();
                let decoded = eager(cache)?;
                // The step bumped the revision: what the next call will see, if nothing else
                // changes the cache in between.
                slot.warmed = cache_identity(cache)?;
                return Ok(decoded);
            }
            match self.capture(cache, identity, len, capacity, ending) {
                Ok(graph) => {
                    slot.graph = Some(graph);
                    slot.captures += 1;
                }
                Err(e) => {
                    slot.failure = Some(e.to_string());
                    if let Ok(mut last) = self.graph_failure.lock() {
                        *last = Some(e.to_string());
                    }
                    return eager(cache);
                }
            }
        }
        let graph = slot.graph.as_ref().expect("captured above");
        let positions: Vec<f32> = cache.next_position.iter().map(|&p| p as f32).collect();
        upload(&graph.ids, tokens)?;
        upload(&graph.positions, &positions)?;
        upload(&graph.counters, &[len as u32, len as u32 + 1])?;
        graph.graph.launch().w()?;
        slot.replays += 1;
        // The bookkeeping eager steps do on the host.
        for layer in &mut cache.layers {
            if let LayerCache::Attention(a) = layer {
                a.len += steps;
            }
        }
        cache.position += steps;
        for p in &mut cache.next_position {
            *p += steps as u32;
        }
        if let Some(seen) = cache.seen.take() {
            let ones = Tensor::ones((b, steps), DType::F32, &device)?;
            cache.seen = Some(Tensor::cat(&[&seen, &ones], 1)?);
        }
        match &graph.picks {
            None => Ok(Decoded::Logits(graph.logits.clone())),
            Some(picks) => {
                let rows: Vec<Vec<f32>> = picks.to_vec2()?;
                Ok(Decoded::Picks(
                    rows.into_iter()
                        .map(|row| {
                            let tokens = row[..b].iter().map(|&t| t as u32).collect();
                            (tokens, row[b..].to_vec())
                        })
                        .collect(),
                ))
            }
        }
    }

    /// Captures decoding step(s) for `cache`'s batch and buffers.
    fn capture(
        &self,
        cache: &mut Cache,
        identity: Vec<u64>,
        len: usize,
        capacity: usize,
        ending: Ending,
    ) -> Result<DecodeGraph> {
        let device = self.embed.embeddings().device().clone();
        let Device::Cuda(cuda) = &device else {
            bail!("CUDA graph: not a CUDA device");
        };
        let b = cache.next_position.len();
        let seen = cache.seen.as_ref().expect("checked by the caller");
        if seen.dim(1)? != len {
            bail!("CUDA graph: the cache's columns and key/value length disagree");
        }
        let ids = Tensor::zeros((b, 1), DType::U32, &device)?;
        let positions = Tensor::zeros((b, 1), DType::F32, &device)?;
        let counters = Tensor::zeros(2, DType::U32, &device)?;
        let closed = Tensor::full(-1e30f32, (b, capacity - len), &device)?;
        let bias = Tensor::cat(&[&((seen - 1.0)? * 1e30)?, &closed], 1)?
            .reshape((b, 1, 1, capacity))?
            .contiguous()?;
        let logits = Tensor::zeros(
            (b, self.config().vocab_size),
            self.embed.embeddings().dtype(),
            &device,
        )?;
        let picks = match ending {
            Ending::Logits => None,
            Ending::Greedy(steps) => {
                // The sampling kernels' module is loaded now: a capture may not.
                crate::kernels::sample::load(cuda, logits.dtype())?;
                Some(Tensor::zeros((steps, 2 * b), DType::F32, &device)?)
            }
        };
        let freqs = positions.unsqueeze(2)?.broadcast_mul(&self.inv_freq)?;
        let emb = Tensor::cat(&[&freqs, &freqs], 2)?.unsqueeze(1)?;
        let stream = cuda.cuda_stream();
        stream.synchronize().w()?;
        let _cached = cuda.enable_cuda_graph_htod_cache();
        stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .w()?;
        let recorded = (|| -> Result<()> {
            let step = Step {
                positions: positions.clone(),
                inv_freq: self.inv_freq.flatten_all()?,
                cos: emb.cos()?,
                sin: emb.sin()?,
                bias: bias.clone(),
                causal_blocks: false,
                mask: None,
                fused: self.fused,
                graph: Some(counters.clone()),
                stopwatch: None,
                reserve: cache.reserve,
                lora: self.policy.clone(),
            };
            for s in 0..ending.steps() {
                let h = self.run_layers(&ids, &step, Some(&mut *cache))?;
                let normed = self.norm.forward(&h)?;
                let out = crate::lora::apply_linear(&self.lm_head, &normed, self.fused.gemv)?;
                let out = out.squeeze(1)?;
                match &picks {
                    None => logits.slice_set(&out, 0, 0)?,
                    Some(picks) => {
                        let picked = crate::kernels::sample::greedy(&out)?;
                        let record = picks.narrow(0, s, 1)?;
                        crate::kernels::sample::advance(
                            &picked, &record, &ids, &positions, &counters,
                        )?;
                    }
                }
            }
            Ok(())
        })();
        // Always end the capture, so the stream is usable whatever happened.
        let graph = stream.end_capture(CUgraphInstantiate_flags(0));
        recorded?;
        let Some(graph) = graph.w()? else {
            bail!("CUDA graph: the capture recorded nothing");
        };
        graph.upload().w()?;
        Ok(DecodeGraph {
            graph,
            ending,
            picks,
            ids,
            positions,
            counters,
            bias,
            logits,
            identity,
        })
    }
}
