//! The wgpu device, the two pipelines, corpus upload and the search itself.

use super::pack::{check_finite, pack, round_up};
use super::types::{RetrieveError, Storage};
use lamar_core::pseudo::retrieve::{Embeddings, Neighbour};
use wgpu::util::DeviceExt;

/// Entries sorted by one workgroup of `select.wgsl`.
const RUN: usize = 2048;
/// Rows and columns of one workgroup's tile in `similarity.wgsl`.
const TILE: usize = 128;
/// Values per step of the tiled product: rows are padded to a multiple of this.
const DEPTH: usize = 16;
/// The most candidates a search keeps per query (half a run, so that every reduction pass
/// shrinks the list).
pub const MAX_CANDIDATES: usize = RUN / 2;
/// The most queries in one batch (the select dispatch's second dimension).
const MAX_QUERY_BATCH: usize = 4096;

/// The wgpu device with retrieval's pipelines.
#[derive(Clone)]
pub struct GpuRetriever {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    similarity: [wgpu::ComputePipeline; 2],
    select_scores: wgpu::ComputePipeline,
    select_candidates: wgpu::ComputePipeline,
    similarity_layout: wgpu::BindGroupLayout,
    select_layout: wgpu::BindGroupLayout,
    /// A cap below the adapter's storage-binding limit, if any.
    binding_cap: Option<usize>,
}

/// A corpus on the GPU, in blocks of rows that each fit one storage binding.
pub struct GpuCorpus {
    blocks: Vec<CorpusBlock>,
    rows: usize,
    dim: usize,
    storage: Storage,
}

struct CorpusBlock {
    buffer: wgpu::Buffer,
    /// The block's first corpus row.
    first: usize,
    /// Real rows.
    rows: usize,
    /// Rows in the buffer (a multiple of the tile).
    padded_rows: usize,
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
    fn padded_dim(&self) -> usize {
        round_up(self.dim, DEPTH)
    }

    /// Rows in the largest block's buffer (the width of a block of scores).
    fn widest_block(&self) -> usize {
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

/// `similarity.wgsl` for one storage type.
fn similarity_source(storage: Storage) -> String {
    let template = include_str!("similarity.wgsl");
    let (element, queries, corpus) = match storage {
        Storage::F32 => (
            "vec4<f32>",
            "return queries[index];",
            "return corpus[index];",
        ),
        Storage::F16 => (
            "vec2<u32>",
            "let w = queries[index]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));",
            "let w = corpus[index]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));",
        ),
    };
    template
        .replace("STORAGE", element)
        .replace("LOAD_QUERIES", queries)
        .replace("LOAD_CORPUS", corpus)
}

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
    out_first_run: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Candidate {
    score: f32,
    index: u32,
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
        let similarity_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("similarity"),
            entries: &[
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, false),
                uniform_entry(3),
            ],
        });
        let select_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("select"),
            entries: &[
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, false),
                uniform_entry(3),
            ],
        });
        let pipeline = |label: &str, source: String, layout: &wgpu::BindGroupLayout| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(layout)],
                immediate_size: 0,
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(&layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let similarity = [
            pipeline(
                "similarity f32",
                similarity_source(Storage::F32),
                &similarity_layout,
            ),
            pipeline(
                "similarity f16",
                similarity_source(Storage::F16),
                &similarity_layout,
            ),
        ];
        let select = include_str!("select.wgsl");
        let select_scores = pipeline(
            "select scores",
            select.replace("FROM_SCORES", "true"),
            &select_layout,
        );
        let select_candidates = pipeline(
            "select candidates",
            select.replace("FROM_SCORES", "false"),
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
        })
    }

    /// The same device with buffers of at most `bytes` (the adapter's limit when lower): the
    /// corpus goes up in smaller blocks and the queries run in smaller batches, so that less
    /// memory is held at once.
    pub fn with_binding_bytes(&self, bytes: usize) -> GpuRetriever {
        GpuRetriever {
            binding_cap: Some(bytes),
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
        check_finite(&corpus, "corpus")?;
        if corpus.rows() >= u32::MAX as usize {
            return Err(RetrieveError::TooManyRows(corpus.rows()));
        }
        let padded_dim = round_up(corpus.dim, DEPTH);
        let row_bytes = padded_dim * storage.bytes();
        // Rows per block: whole runs, within one binding for the rows and for a tile of scores.
        let by_rows = self.binding_bytes() / row_bytes;
        let by_scores = self.binding_bytes() / (TILE * 4);
        let block_rows = (by_rows.min(by_scores) / RUN) * RUN;
        if block_rows == 0 {
            return Err(RetrieveError::RowTooWide(corpus.dim));
        }
        let mut blocks = Vec::new();
        let mut first = 0;
        while first < corpus.rows() {
            let rows = block_rows.min(corpus.rows() - first);
            let padded_rows = round_up(rows, TILE);
            let bytes = pack(&corpus, first, rows, padded_rows, padded_dim, storage);
            let buffer = self
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("corpus block"),
                    contents: &bytes,
                    usage: wgpu::BufferUsages::STORAGE,
                });
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
        if candidates > MAX_CANDIDATES {
            return Err(RetrieveError::TooManyCandidates(candidates));
        }
        if queries.dim != corpus.dim {
            return Err(RetrieveError::Dimensions {
                queries: queries.dim,
                corpus: corpus.dim,
            });
        }
        check_finite(&queries, "queries")?;
        if candidates == 0 || corpus.rows == 0 {
            return Ok(vec![Vec::new(); queries.rows()]);
        }
        let runs: usize = corpus.blocks.iter().map(|b| b.rows.div_ceil(RUN)).sum();
        let stride = runs * candidates;
        let widest = corpus.widest_block();
        // Queries per batch: the scores of a block and the candidates within one binding each.
        let by_scores = self.binding_bytes() / (widest * 4);
        let by_candidates = self.binding_bytes() / (stride * std::mem::size_of::<Candidate>());
        let batch = (by_scores.min(by_candidates).min(MAX_QUERY_BATCH) / TILE) * TILE;
        if batch == 0 {
            return Err(RetrieveError::RowTooWide(corpus.dim));
        }
        let mut found = Vec::with_capacity(queries.rows());
        let mut first = 0;
        while first < queries.rows() {
            let rows = batch.min(queries.rows() - first);
            found.extend(self.search_batch(corpus, &queries, first, rows, candidates, runs)?);
            first += rows;
        }
        Ok(found)
    }

    fn uniform<T: bytemuck::Pod>(&self, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("parameters"),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    fn storage_buffer(&self, bytes: usize, label: &str) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
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

    /// One batch of queries through every block, then the reductions, then the readback.
    fn search_batch(
        &self,
        corpus: &GpuCorpus,
        queries: &Embeddings,
        first: usize,
        rows: usize,
        candidates: usize,
        runs: usize,
    ) -> Result<Vec<Vec<Neighbour>>, RetrieveError> {
        let padded_dim = corpus.padded_dim();
        let padded_rows = round_up(rows, TILE);
        let query_buffer = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("queries"),
                contents: &pack(
                    queries,
                    first,
                    rows,
                    padded_rows,
                    padded_dim,
                    corpus.storage,
                ),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let widest = corpus.widest_block();
        let scores = self.storage_buffer(padded_rows * widest * 4, "scores");
        let candidate_bytes = rows * runs * candidates * std::mem::size_of::<Candidate>();
        let mut current = self.storage_buffer(candidate_bytes, "candidates");
        let mut spare = self.storage_buffer(candidate_bytes, "candidates");
        let similarity = match corpus.storage {
            Storage::F32 => &self.similarity[0],
            Storage::F16 => &self.similarity[1],
        };
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let mut run = 0;
        for block in &corpus.blocks {
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
            let block_runs = block.rows.div_ceil(RUN);
            let params = self.uniform(&SelectParams {
                entries: block.padded_rows as u32,
                valid: block.rows as u32,
                index_offset: block.first as u32,
                keep: candidates as u32,
                out_stride: (runs * candidates) as u32,
                out_first_run: run as u32,
                _pad: [0; 2],
            });
            // The candidate input is unused when reading scores; any storage buffer will do.
            let select = self.bind(&self.select_layout, [&scores, &spare, &current, &params]);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(similarity);
            pass.set_bind_group(0, &product, &[]);
            pass.dispatch_workgroups(
                (block.padded_rows / TILE) as u32,
                (padded_rows / TILE) as u32,
                1,
            );
            pass.set_pipeline(&self.select_scores);
            pass.set_bind_group(0, &select, &[]);
            pass.dispatch_workgroups(block_runs as u32, rows as u32, 1);
            drop(pass);
            run += block_runs;
        }
        // Reduce the kept entries, a run at a time, until one run is left.
        let mut entries = runs * candidates;
        while entries > candidates {
            let out_runs = entries.div_ceil(RUN);
            let params = self.uniform(&SelectParams {
                entries: entries as u32,
                valid: entries as u32,
                index_offset: 0,
                keep: candidates as u32,
                out_stride: (out_runs * candidates) as u32,
                out_first_run: 0,
                _pad: [0; 2],
            });
            let select = self.bind(&self.select_layout, [&scores, &current, &spare, &params]);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&self.select_candidates);
            pass.set_bind_group(0, &select, &[]);
            pass.dispatch_workgroups(out_runs as u32, rows as u32, 1);
            drop(pass);
            std::mem::swap(&mut current, &mut spare);
            entries = out_runs * candidates;
        }
        let result_bytes = (rows * candidates * std::mem::size_of::<Candidate>()) as u64;
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: result_bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(&current, 0, &readback, 0, result_bytes);
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = std::sync::mpsc::channel();
        readback.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = sender.send(result);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RetrieveError::Readback(e.to_string()))?;
        receiver
            .recv()
            .map_err(|e| RetrieveError::Readback(e.to_string()))?
            .map_err(|e| RetrieveError::Readback(e.to_string()))?;
        let view = readback
            .get_mapped_range(..)
            .map_err(|e| RetrieveError::Readback(e.to_string()))?;
        let kept: &[Candidate] = bytemuck::cast_slice(&view);
        let real = candidates.min(corpus.rows);
        Ok(kept
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
            .collect())
    }
}
