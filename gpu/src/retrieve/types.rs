//! How the embeddings are stored on the GPU, and what can go wrong.

use super::context::MAX_CANDIDATES;

/// How the corpus and the queries are stored on the GPU (the products are f32 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Single precision: the CPU path's values.
    F32,
    /// Half precision: half the memory and bandwidth; values rounded to the nearest f16.
    F16,
}

impl Storage {
    /// Bytes per value.
    pub(super) fn bytes(self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::F16 => 2,
        }
    }
}

/// Why a GPU search failed.
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// No Vulkan, Metal or DX12 adapter.
    #[error(
        "no GPU adapter found (wgpu looked for Vulkan, Metal and DX12; on Linux install a \
         Vulkan driver and its loader, libvulkan1, or a software one such as Mesa's lavapipe): {0}"
    )]
    NoAdapter(String),
    /// The adapter would not open a device.
    #[error("the GPU adapter {adapter} refused a device: {message}")]
    Device {
        /// The adapter's name.
        adapter: String,
        /// wgpu's reason.
        message: String,
    },
    /// More candidates than the GPU path keeps.
    #[error("{0} candidates asked for; the GPU path keeps at most {MAX_CANDIDATES} per query")]
    TooManyCandidates(usize),
    /// Queries and corpus of different widths.
    #[error("queries have {queries} values per row but the corpus has {corpus}")]
    Dimensions {
        /// Query width.
        queries: usize,
        /// Corpus width.
        corpus: usize,
    },
    /// A value that is not a finite number.
    #[error("{matrix} row {row} holds a value that is not finite")]
    NotFinite {
        /// `queries` or `corpus`.
        matrix: &'static str,
        /// The row.
        row: usize,
    },
    /// A value beyond half precision's range, with f16 storage.
    #[error(
        "{matrix} row {row} holds a value beyond half precision's range (±65,504); use f32 storage"
    )]
    OutOfHalfRange {
        /// `queries` or `corpus`.
        matrix: &'static str,
        /// The row.
        row: usize,
    },
    /// Rows the search cannot index.
    #[error("the corpus has {0} rows; the GPU path indexes at most 4,294,967,294")]
    TooManyRows(usize),
    /// A row too wide for one storage binding.
    #[error("rows of {0} values do not fit one storage binding of this GPU")]
    RowTooWide(usize),
    /// Copying a matrix to the GPU failed.
    #[error("copying {bytes} bytes of {what} to the GPU failed: {message}")]
    Upload {
        /// `queries` or `corpus`.
        what: &'static str,
        /// The bytes to copy.
        bytes: usize,
        /// wgpu's reason.
        message: String,
    },
    /// Reading the results back failed.
    #[error("reading the results back from the GPU failed: {0}")]
    Readback(String),
}

/// Where a search's time went, stage by stage ([`super::GpuRetriever::top_candidates_timed`]),
/// in seconds summed over query batches and corpus blocks.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SearchStages {
    /// Packing and uploading the queries, allocating the scratch buffers.
    pub prepare_s: f64,
    /// The similarity products.
    pub product_s: f64,
    /// Selecting each query's best, the merge over blocks included.
    pub select_s: f64,
    /// Copying the lists back and reading them.
    pub readback_s: f64,
}
