//! The wgpu device, its two pipelines, corpus upload, and the search split into query batches.

use super::pack::{check_storable, pack_into, round_up};
use super::search::{Candidate, QueryBatch, Scratch};
use super::shaders::{pipeline, select_source, similarity_source};
use super::types::{RetrieveError, SearchStages, Storage};
use lamar_core::pseudo::retrieve::{Embeddings, Neighbour};
use std::sync::{Arc, Mutex};

/// Rows and columns of one workgroup's tile in `similarity.wgsl`.
pub(super) const TILE: usize = 128;
/// Values per step of the tiled product: rows are padded to a multiple of this.
const DEPTH: usize = 16;
/// The most candidates a search keeps per query (what `select.wgsl` sorts in workgroup memory).
pub const MAX_CANDIDATES: usize = 1024;
/// The most queries in one batch (the select dispatch's second dimension).
const MAX_QUERY_BATCH: usize = 4096;

/// The wgpu device with retrieval's pipelines.
#[derive(Clone)]
pub struct GpuRetriever {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) adapter: wgpu::AdapterInfo,
    pub(super) limits: wgpu::Limits,
    pub(super) similarity: [wgpu::ComputePipeline; 2],
    pub(super) select_scores: wgpu::ComputePipeline,
    pub(super) select_candidates: wgpu::ComputePipeline,
    pub(super) similarity_layout: wgpu::BindGroupLayout,
    pub(super) select_layout: wgpu::BindGroupLayout,
    /// A cap below the adapter's storage-binding limit, if any.
    pub(super) binding_cap: Option<usize>,
    /// Buffers kept from one search to the next.
    pub(super) scratch: Arc<Mutex<Scratch>>,
}

/// A corpus on the GPU, in blocks of rows that each fit one storage binding.
pub struct GpuCorpus {
    pub(super) blocks: Vec<CorpusBlock>,
    pub(super) rows: usize,
    pub(super) dim: usize,
    pub(super) storage: Storage,
}

pub(super) struct CorpusBlock {
    pub(super) buffer: wgpu::Buffer,
    /// The block's first corpus row.
    pub(super) first: usize,
    /// Real rows.
    pub(super) rows: usize,
    /// Rows in the buffer (a multiple of the tile).
    pub(super) padded_rows: usize,
}

impl GpuCorpus {
    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Values per row on the GPU (zero-padded to the product's step).
    pub(super) fn padded_dim(&self) -> usize {
        round_up(self.dim, DEPTH)
    }

    /// Rows in the largest block's buffer (the width of a block of scores).
    pub(super) fn widest_block(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.padded_rows)
            .max()
            .unwrap_or(TILE)
    }

    /// Blocks it was uploaded in.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// How it is stored.
    pub fn storage(&self) -> Storage {
        self.storage
    }
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl GpuRetriever {
    /// Opens the first high-performance adapter wgpu finds (`WGPU_BACKEND` and
    /// `WGPU_ADAPTER_NAME` choose another) and builds the pipelines.
    pub fn new() -> Result<GpuRetriever, RetrieveError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
            &instance, None,
        ))
        .map_err(|e| RetrieveError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("lamar retrieval"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| RetrieveError::Device {
            adapter: info.name.clone(),
            message: e.to_string(),
        })?;
        let layout = |label: &str| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &[
                    storage_entry(0, true),
                    storage_entry(1, true),
                    storage_entry(2, false),
                    uniform_entry(3),
                ],
            })
        };
        let similarity_layout = layout("similarity");
        let select_layout = layout("select");
        let similarity = [Storage::F32, Storage::F16].map(|storage| {
            pipeline(
                &device,
                &format!("similarity {storage:?}"),
                similarity_source(storage),
                &similarity_layout,
            )
        });
        let select_scores = pipeline(
            &device,
            "select scores",
            select_source(true),
            &select_layout,
        );
        let select_candidates = pipeline(
            &device,
            "select candidates",
            select_source(false),
            &select_layout,
        );
        Ok(GpuRetriever {
            device,
            queue,
            adapter: info,
            limits,
            similarity,
            select_scores,
            select_candidates,
            similarity_layout,
            select_layout,
            binding_cap: None,
            scratch: Arc::default(),
        })
    }

    /// The same device with buffers of at most `bytes` (the adapter's limit when lower): the
    /// corpus goes up in smaller blocks and the queries run in smaller batches, so that less
    /// memory is held at once.
    pub fn with_binding_bytes(&self, bytes: usize) -> GpuRetriever {
        GpuRetriever {
            binding_cap: Some(bytes),
            // Its own buffers: those of the uncapped device may be larger than the cap.
            scratch: Arc::default(),
            ..self.clone()
        }
    }

    /// The adapter's name and backend, e.g. `NVIDIA H200 (Vulkan)`.
    pub fn adapter(&self) -> String {
        format!("{} ({:?})", self.adapter.name, self.adapter.backend)
    }

    /// Bytes one storage binding (and one buffer) may hold.
    fn binding_bytes(&self) -> usize {
        let adapter = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        usize::try_from(adapter)
            .unwrap_or(usize::MAX)
            .min(self.binding_cap.unwrap_or(usize::MAX))
    }

    /// Uploads a corpus in blocks of rows that fit one storage binding.
    pub fn upload(&self, corpus: Embeddings, storage: Storage) -> Result<GpuCorpus, RetrieveError> {
        check_storable(&corpus, "corpus", storage)?;
        if corpus.rows() >= u32::MAX as usize {
            return Err(RetrieveError::TooManyRows(corpus.rows()));
        }
        let padded_dim = round_up(corpus.dim, DEPTH);
        let row_bytes = padded_dim * storage.bytes();
        // Rows per block: whole tiles, within one binding for the rows and for a tile of scores.
        let by_rows = self.binding_bytes() / row_bytes;
        let by_scores = self.binding_bytes() / (TILE * 4);
        let block_rows = (by_rows.min(by_scores) / TILE) * TILE;
        if block_rows == 0 {
            return Err(RetrieveError::RowTooWide(corpus.dim));
        }
        let mut blocks = Vec::new();
        let mut first = 0;
        while first < corpus.rows() {
            let rows = block_rows.min(corpus.rows() - first);
            let padded_rows = round_up(rows, TILE);
            // Packed straight into the new buffer's mapped memory (no host copy of the block).
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("corpus block"),
                size: (padded_rows * row_bytes) as u64,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: true,
            });
            {
                let mut mapped =
                    buffer
                        .get_mapped_range_mut(..)
                        .map_err(|e| RetrieveError::Upload {
                            what: "corpus",
                            bytes: padded_rows * row_bytes,
                            message: e.to_string(),
                        })?;
                pack_into(mapped.slice(..), &corpus, first, rows, padded_dim, storage);
            }
            buffer.unmap();
            blocks.push(CorpusBlock {
                buffer,
                first,
                rows,
                padded_rows,
            });
            first += rows;
        }
        Ok(GpuCorpus {
            blocks,
            rows: corpus.rows(),
            dim: corpus.dim,
            storage,
        })
    }

    /// The `candidates` most similar corpus rows of every query, best first (ties: the lower
    /// row); fewer when the corpus is smaller.
    pub fn top_candidates(
        &self,
        corpus: &GpuCorpus,
        queries: Embeddings,
        candidates: usize,
    ) -> Result<Vec<Vec<Neighbour>>, RetrieveError> {
        self.search(corpus, queries, candidates, None)
    }

    /// [`GpuRetriever::top_candidates`], waiting for the GPU after each stage to time it (for
    /// benchmarks: the waits make the whole search slower).
    pub fn top_candidates_timed(
        &self,
        corpus: &GpuCorpus,
        queries: Embeddings,
        candidates: usize,
    ) -> Result<(Vec<Vec<Neighbour>>, SearchStages), RetrieveError> {
        let mut stages = SearchStages::default();
        let found = self.search(corpus, queries, candidates, Some(&mut stages))?;
        Ok((found, stages))
    }

    fn search(
        &self,
        corpus: &GpuCorpus,
        queries: Embeddings,
        candidates: usize,
        mut stages: Option<&mut SearchStages>,
    ) -> Result<Vec<Vec<Neighbour>>, RetrieveError> {
        if candidates > MAX_CANDIDATES {
            return Err(RetrieveError::TooManyCandidates(candidates));
        }
        if queries.dim != corpus.dim {
            return Err(RetrieveError::Dimensions {
                queries: queries.dim,
                corpus: corpus.dim,
            });
        }
        check_storable(&queries, "queries", corpus.storage)?;
        if candidates == 0 || corpus.rows == 0 {
            return Ok(vec![Vec::new(); queries.rows()]);
        }
        let stride = corpus.blocks.len() * candidates;
        let widest = corpus.widest_block();
        // Queries per batch: the queries, the scores of a block and the candidates within one
        // binding each.
        let by_queries = self.binding_bytes() / (corpus.padded_dim() * corpus.storage.bytes());
        let by_scores = self.binding_bytes() / (widest * 4);
        let by_candidates = self.binding_bytes() / (stride * std::mem::size_of::<Candidate>());
        let batch = (by_queries
            .min(by_scores)
            .min(by_candidates)
            .min(MAX_QUERY_BATCH)
            / TILE)
            * TILE;
        if batch == 0 {
            return Err(RetrieveError::RowTooWide(corpus.dim));
        }
        let mut found = Vec::with_capacity(queries.rows());
        let mut first = 0;
        while first < queries.rows() {
            let rows = batch.min(queries.rows() - first);
            let batch = QueryBatch {
                first,
                rows,
                candidates,
            };
            found.extend(self.search_batch(corpus, &queries, batch, stages.as_deref_mut())?);
            first += rows;
        }
        Ok(found)
    }
}
