//! One batch of queries on the GPU: per corpus block the product (`similarity.wgsl`) and the
//! selection of each query's best (`select.wgsl`), then one more selection over the blocks'
//! candidates when there are several, then the readback of the final lists.

use super::context::{GpuCorpus, GpuRetriever, TILE};
use super::pack::{pack_into, round_up};
use super::types::{RetrieveError, SearchStages, Storage};
use lamar_core::pseudo::retrieve::{Embeddings, Neighbour};
use std::time::Instant;
use wgpu::util::DeviceExt;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SimilarityDims {
    query_rows: u32,
    corpus_rows: u32,
    dim: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SelectParams {
    entries: u32,
    valid: u32,
    index_offset: u32,
    keep: u32,
    out_stride: u32,
    out_slot: u32,
    _pad: [u32; 2],
}

/// One kept entry as the shaders store it.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Candidate {
    score: f32,
    index: u32,
}

/// Which queries a batch covers, and how many candidates each keeps.
pub(super) struct QueryBatch {
    pub(super) first: usize,
    pub(super) rows: usize,
    pub(super) candidates: usize,
}

/// Buffers kept from one search to the next, grown when a search needs more: allocating (and
/// wgpu's zero-filling of) a score buffer of about 100 MB per search cost more than the
/// selection itself. Searches take the lock for their whole run, so no two share a buffer.
#[derive(Default)]
pub(super) struct Scratch {
    buffers: Vec<(&'static str, wgpu::Buffer)>,
}

impl Scratch {
    /// Drops the kept buffer `label` (the next request makes a new one).
    fn forget(&mut self, label: &str) {
        self.buffers.retain(|(name, _)| *name != label);
    }

    /// The buffer `label` with at least `bytes` (a new one when the kept one is smaller).
    fn buffer(
        &mut self,
        device: &wgpu::Device,
        label: &'static str,
        bytes: usize,
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        let size = round_up(bytes.max(16), 16) as u64;
        if let Some((_, kept)) = self
            .buffers
            .iter()
            .find(|(name, kept)| *name == label && kept.size() >= size)
        {
            return kept.clone();
        }
        self.forget(label);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        });
        self.buffers.push((label, buffer.clone()));
        buffer
    }
}

/// Usage of the buffers the shaders write and the readback copies from.
const STORAGE_OUT: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC);

/// Stage timing: with it, each stage is submitted alone and waited for.
struct Timer<'a> {
    stages: Option<&'a mut SearchStages>,
    started: Instant,
}

impl Timer<'_> {
    /// Submits what `encoder` holds, waits for it, and [records](Timer::record) the stage
    /// `pick` chooses; without stage timing, does nothing (the encoder keeps collecting).
    fn lap(
        &mut self,
        gpu: &GpuRetriever,
        encoder: &mut wgpu::CommandEncoder,
        pick: fn(&mut SearchStages) -> &mut f64,
    ) -> Result<(), RetrieveError> {
        if self.stages.is_none() {
            return Ok(());
        }
        let done = std::mem::replace(encoder, gpu.encoder());
        gpu.queue.submit([done.finish()]);
        gpu.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RetrieveError::Readback(e.to_string()))?;
        self.record(pick);
        Ok(())
    }

    /// Adds the time since the last record to the stage `pick` chooses (for host work, or GPU
    /// work already waited for).
    fn record(&mut self, pick: fn(&mut SearchStages) -> &mut f64) {
        if let Some(stages) = self.stages.as_deref_mut() {
            *pick(stages) += self.started.elapsed().as_secs_f64();
            self.started = Instant::now();
        }
    }
}

impl GpuRetriever {
    fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    fn uniform<T: bytemuck::Pod>(&self, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("parameters"),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    fn bind(&self, layout: &wgpu::BindGroupLayout, buffers: [&wgpu::Buffer; 4]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(k, b)| wgpu::BindGroupEntry {
                binding: k as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout,
            entries: &entries,
        })
    }

    /// One dispatch of a pipeline in a pass of its own.
    fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        groups: (usize, usize),
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(groups.0 as u32, groups.1 as u32, 1);
    }

    /// One batch of queries through every block, then the merge, then the readback.
    pub(super) fn search_batch(
        &self,
        corpus: &GpuCorpus,
        queries: &Embeddings,
        batch: QueryBatch,
        stages: Option<&mut SearchStages>,
    ) -> Result<Vec<Vec<Neighbour>>, RetrieveError> {
        let QueryBatch {
            first,
            rows,
            candidates,
        } = batch;
        let mut timer = Timer {
            stages,
            started: Instant::now(),
        };
        let padded_dim = corpus.padded_dim();
        let padded_rows = round_up(rows, TILE);
        let mut scratch = self
            .scratch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let query_bytes = padded_rows * padded_dim * corpus.storage.bytes();
        let query_buffer = scratch.buffer(
            &self.device,
            "queries",
            query_bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        );
        // Packed straight into the staging memory wgpu copies from at the next submission.
        // (A batch has at least one row of at least one padded depth, so never zero bytes.)
        let mut staging = wgpu::BufferSize::new(query_bytes as u64)
            .and_then(|size| self.queue.write_buffer_with(&query_buffer, 0, size))
            .ok_or_else(|| RetrieveError::Upload {
                what: "queries",
                bytes: query_bytes,
                message: "wgpu gave no staging memory (a refused write reports its reason to the \
                          device's error handler)"
                    .into(),
            })?;
        pack_into(
            staging.slice(..),
            queries,
            first,
            rows,
            padded_dim,
            corpus.storage,
        );
        drop(staging);
        let widest = corpus.widest_block();
        let scores = scratch.buffer(
            &self.device,
            "scores",
            padded_rows * widest * 4,
            STORAGE_OUT,
        );
        let slots = corpus.blocks.len();
        let candidate_bytes = rows * slots * candidates * std::mem::size_of::<Candidate>();
        let per_block = scratch.buffer(
            &self.device,
            "candidates per block",
            candidate_bytes,
            STORAGE_OUT,
        );
        let merged = scratch.buffer(
            &self.device,
            "candidates",
            rows * candidates * std::mem::size_of::<Candidate>(),
            STORAGE_OUT,
        );
        let similarity = match corpus.storage {
            Storage::F32 => &self.similarity[0],
            Storage::F16 => &self.similarity[1],
        };
        timer.record(|s| &mut s.prepare_s);
        let mut encoder = self.encoder();
        for (slot, block) in corpus.blocks.iter().enumerate() {
            let dims = self.uniform(&SimilarityDims {
                query_rows: padded_rows as u32,
                corpus_rows: block.padded_rows as u32,
                dim: padded_dim as u32,
                _pad: 0,
            });
            let product = self.bind(
                &self.similarity_layout,
                [&query_buffer, &block.buffer, &scores, &dims],
            );
            self.dispatch(
                &mut encoder,
                similarity,
                &product,
                (block.padded_rows / TILE, padded_rows / TILE),
            );
            timer.lap(self, &mut encoder, |s| &mut s.product_s)?;
            let params = self.uniform(&SelectParams {
                entries: block.padded_rows as u32,
                valid: block.rows as u32,
                index_offset: block.first as u32,
                keep: candidates as u32,
                out_stride: (slots * candidates) as u32,
                out_slot: slot as u32,
                _pad: [0; 2],
            });
            // The candidate input is unused when reading scores; any storage buffer will do.
            let select = self.bind(&self.select_layout, [&scores, &merged, &per_block, &params]);
            self.dispatch(&mut encoder, &self.select_scores, &select, (1, rows));
            timer.lap(self, &mut encoder, |s| &mut s.select_s)?;
        }
        let result = if slots > 1 {
            let entries = (slots * candidates) as u32;
            let params = self.uniform(&SelectParams {
                entries,
                valid: entries,
                index_offset: 0,
                keep: candidates as u32,
                out_stride: candidates as u32,
                out_slot: 0,
                _pad: [0; 2],
            });
            let select = self.bind(&self.select_layout, [&scores, &per_block, &merged, &params]);
            self.dispatch(&mut encoder, &self.select_candidates, &select, (1, rows));
            timer.lap(self, &mut encoder, |s| &mut s.select_s)?;
            &merged
        } else {
            &per_block
        };
        let found = self.read_back(&mut scratch, encoder, result, rows, candidates, corpus.rows)?;
        timer.record(|s| &mut s.readback_s);
        Ok(found)
    }

    /// Copies the final lists to the host and turns them into neighbours.
    fn read_back(
        &self,
        scratch: &mut Scratch,
        mut encoder: wgpu::CommandEncoder,
        result: &wgpu::Buffer,
        rows: usize,
        candidates: usize,
        corpus_rows: usize,
    ) -> Result<Vec<Vec<Neighbour>>, RetrieveError> {
        let result_bytes = (rows * candidates * std::mem::size_of::<Candidate>()) as u64;
        let readback = scratch.buffer(
            &self.device,
            "readback",
            result_bytes as usize,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        encoder.copy_buffer_to_buffer(result, 0, &readback, 0, result_bytes);
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = std::sync::mpsc::channel();
        readback.map_async(wgpu::MapMode::Read, ..result_bytes, move |result| {
            let _ = sender.send(result);
        });
        let mapped = self
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RetrieveError::Readback(e.to_string()))
            .and_then(|_| {
                receiver
                    .recv()
                    .map_err(|e| RetrieveError::Readback(e.to_string()))?
                    .map_err(|e| RetrieveError::Readback(e.to_string()))
            })
            .and_then(|()| {
                readback
                    .get_mapped_range(..result_bytes)
                    .map_err(|e| RetrieveError::Readback(e.to_string()))
            });
        let view = match mapped {
            Ok(view) => view,
            Err(e) => {
                // Its mapping may still be pending or active: a later search must not copy
                // into it, so the next one gets a new buffer.
                scratch.forget("readback");
                return Err(e);
            }
        };
        let kept: &[Candidate] = bytemuck::cast_slice(&view);
        let real = candidates.min(corpus_rows);
        let found = kept
            .chunks_exact(candidates)
            .map(|row| {
                row[..real]
                    .iter()
                    .map(|c| Neighbour {
                        index: c.index as usize,
                        score: c.score,
                    })
                    .collect()
            })
            .collect();
        drop(view);
        // Unmapped, the buffer can take the next search's copy.
        readback.unmap();
        Ok(found)
    }
}
