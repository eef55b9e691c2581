//! Nearest-neighbour retrieval on any GPU through wgpu (Vulkan, Metal, DX12; WebGPU's shading
//! language, so the same shaders suit the browser): the `candidates` most similar corpus rows of
//! every query, in the order of the CPU path ([`lamar_core::pseudo::retrieve::top_candidates`]:
//! higher score first, then lower corpus index).
//!
//! The corpus is uploaded once ([`GpuRetriever::upload`]) in blocks that fit one storage
//! binding, as f32 or f16 ([`Storage`]). A search ([`GpuRetriever::top_candidates`]) then runs,
//! per batch of queries and per block, two compute shaders:
//!
//! 1. `similarity.wgsl`: the block of dot products, a tiled matrix product (128 × 128 per
//!    workgroup, 8 × 8 per thread, 16 values of k per tile) whose every output sums its
//!    products in dimension order;
//! 2. `select.wgsl`: one workgroup per query finds the score of its `candidates`-th best entry
//!    by radix selection (four passes of 8-bit histograms over the scores' order-preserving
//!    keys), gathers the entries above it and the first ones at it, and sorts those (a bitonic
//!    network in workgroup memory);
//!
//! and, when the corpus took several blocks, `select.wgsl` once more over the blocks'
//! candidates. Nothing but the final candidates comes back to the host. Both shaders are built
//! without wgpu's injected bounds checks and loop counters (`shaders::pipeline` says why and
//! why that is sound).
//!
//! Agreement with the CPU path: both compute each dot product in f32, but in different orders
//! (the CPU in eight interleaved partial sums), so scores can differ in the last bits and two
//! nearly tied rows can swap. Where every product and partial sum is exact (for instance
//! small-integer vectors, which the tests use), the two paths return the same neighbours, ties
//! included. With f16 storage the vectors are rounded to half precision on upload.

mod context;
mod pack;
mod search;
mod shaders;
mod types;

pub use context::{GpuCorpus, GpuRetriever, MAX_CANDIDATES};
pub use types::{RetrieveError, SearchStages, Storage};
