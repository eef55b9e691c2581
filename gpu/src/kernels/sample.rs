//! Launches `sample.cu`: greedy decoding's choice and its log-probability in two kernels over
//! the vocabulary split across many blocks (candle's argmax and log-softmax make about a dozen
//! launches and reduce each 248k-wide row in a single block); and sampling with temperature and
//! min-p ([`sample_min_p`]) in three, for about twenty-five.

use super::launch::{address, contiguous_address, cuda_device, function};
use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{DType, Result, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/sample.ptx"));
const MODULE: &str = "lamar_sample";

/// Vocabulary entries one block scans.
const SLICE: usize = 2048;

/// Loads this module's kernels for logits of `dtype` on `device` (a CUDA graph's capture may not
/// load modules, so it calls this first).
pub fn load(device: &candle_core::CudaDevice, dtype: DType) -> Result<()> {
    function(device, "greedy_partial", dtype, MODULE, PTX).map(drop)
}

/// For logits `(B, V)` (f32 or bf16, rows evenly spaced): a `(2B)` f32 tensor holding each row's
/// largest logit's index (the first on ties; as f32, exact below 2²⁴) and then each row's
/// log-probability of it under the softmax.
pub fn greedy(logits: &Tensor) -> Result<Tensor> {
    let dtype = logits.dtype();
    let device = cuda_device(logits)?;
    let stream = device.cuda_stream();
    let (rows, vocab) = logits.dims2()?;
    let (logits_ptr, stride) = address(logits, dtype, "logits")?;
    let blocks = vocab.div_ceil(SLICE).max(1);
    // SAFETY: every element of these is written by the kernels below before it is read.
    let partial = unsafe { Tensor::empty((rows, blocks, 3), DType::F32, logits.device())? };
    let out = unsafe { Tensor::empty(2 * rows, DType::F32, logits.device())? };
    let partial_ptr = contiguous_address(&partial, DType::F32, "partial")?;
    let out_ptr = contiguous_address(&out, DType::F32, "out")?;
    let (vocab_i, blocks_i, rows_i) = (vocab as i32, blocks as i32, rows as i32);
    let scan = function(&device, "greedy_partial", dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&scan);
    launch
        .arg(&logits_ptr)
        .arg(&stride)
        .arg(&vocab_i)
        .arg(&partial_ptr);
    let config = LaunchConfig {
        grid_dim: (blocks as u32, rows as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the pointers and sizes were checked above; each block reads its own slice.
    unsafe { launch.launch(config) }.w()?;
    let finish = function(&device, "greedy_finish", DType::F32, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&finish);
    launch
        .arg(&partial_ptr)
        .arg(&blocks_i)
        .arg(&rows_i)
        .arg(&out_ptr);
    let config = LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: as above.
    unsafe { launch.launch(config) }.w()?;
    Ok(out)
}

/// For the steps of a greedy decoding graph: copies `picked` (`(2B)` f32, [`greedy`]'s output)
/// into `record` (any `2B` contiguous f32 elements, e.g. a row of a `(steps, 2B)` buffer) and
/// makes the next step's inputs in place: `ids` `(B, 1)` u32 become the picked tokens,
/// `positions` `(B, 1)` f32 and `counters` `(2)` u32 (key/value column and length) go one
/// further.
pub fn advance(
    picked: &Tensor,
    record: &Tensor,
    ids: &Tensor,
    positions: &Tensor,
    counters: &Tensor,
) -> Result<()> {
    let rows = ids.elem_count();
    let f32 = DType::F32;
    if picked.elem_count() != 2 * rows
        || record.elem_count() != 2 * rows
        || positions.elem_count() != rows
        || counters.elem_count() != 2
    {
        candle_core::bail!(
            "lamar kernel (greedy advance): {rows} rows but picks {:?}, record {:?}, positions {:?}, counters {:?}",
            picked.dims(),
            record.dims(),
            positions.dims(),
            counters.dims()
        );
    }
    let device = cuda_device(ids)?;
    let picked_ptr = contiguous_address(picked, f32, "picks")?;
    let record_ptr = contiguous_address(record, f32, "record")?;
    let ids_ptr = contiguous_address(ids, DType::U32, "ids")?;
    let positions_ptr = contiguous_address(positions, f32, "positions")?;
    let counters_ptr = contiguous_address(counters, DType::U32, "counters")?;
    let rows_i = rows as i32;
    let func = function(&device, "greedy_advance", f32, MODULE, PTX)?;
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&func);
    launch
        .arg(&picked_ptr)
        .arg(&record_ptr)
        .arg(&ids_ptr)
        .arg(&positions_ptr)
        .arg(&counters_ptr)
        .arg(&rows_i);
    let config = LaunchConfig {
        grid_dim: (rows.div_ceil(256).max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: sizes checked above; one thread per row, thread 0 also moves the counters (one
    // block holds it, and only it touches them).
    unsafe { launch.launch(config) }.w()?;
    Ok(())
}

/// How [`sample_min_p`] draws: `softmax(logits / temperature)` restricted to tokens at least
/// `min_p` times as probable as the most probable one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinPDraw {
    /// Above 0.
    pub temperature: f64,
    /// In `[0, 1]`; 0 keeps every token.
    pub min_p: f64,
    /// Report log-probabilities under the tempered softmax (else the plain one).
    pub tempered: bool,
}

/// A Gumbel-max draw per row of `logits` `(B, V)` (f32 or bf16, rows evenly spaced) with the
/// uniform numbers `noise` `(B, V)` (f32, contiguous, in `(0, 1)`): a `(2B)` f32 tensor holding
/// each row's drawn index (as f32, exact below 2²⁴) and then its log-probability, in three
/// kernels (`sample.cu`). The token is what `argmax(log(min_p(softmax(logits / t))) −
/// log(−log noise))` picks, but for rounding.
pub fn sample_min_p(logits: &Tensor, noise: &Tensor, draw: MinPDraw) -> Result<Tensor> {
    let dtype = logits.dtype();
    let device = cuda_device(logits)?;
    let stream = device.cuda_stream();
    let (rows, vocab) = logits.dims2()?;
    let positive = draw.temperature.is_finite() && draw.temperature > 0.0;
    if noise.dims() != [rows, vocab] || !positive || !(0.0..=1.0).contains(&draw.min_p) {
        candle_core::bail!(
            "lamar kernel (sampling): logits {:?}, noise {:?}, temperature {}, min-p {}",
            logits.dims(),
            noise.dims(),
            draw.temperature,
            draw.min_p
        );
    }
    let (logits_ptr, stride) = address(logits, dtype, "logits")?;
    let noise_ptr = contiguous_address(noise, DType::F32, "noise")?;
    let blocks = vocab.div_ceil(SLICE).max(1);
    // SAFETY: every element of these is written by the kernels below before it is read.
    let partial = unsafe { Tensor::empty((rows, blocks, 3), DType::F32, logits.device())? };
    let choice = unsafe { Tensor::empty((rows, blocks, 2), DType::F32, logits.device())? };
    let out = unsafe { Tensor::empty(2 * rows, DType::F32, logits.device())? };
    let partial_ptr = contiguous_address(&partial, DType::F32, "partial")?;
    let choice_ptr = contiguous_address(&choice, DType::F32, "choice")?;
    let out_ptr = contiguous_address(&out, DType::F32, "out")?;
    let (vocab_i, blocks_i, rows_i) = (vocab as i32, blocks as i32, rows as i32);
    let inv_t = (1.0 / draw.temperature) as f32;
    let log_min_p = (draw.min_p as f32).ln(); // −∞ for 0: every token kept
    let tempered = i32::from(draw.tempered);
    let per_slice = LaunchConfig {
        grid_dim: (blocks as u32, rows as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let stats = function(&device, "sample_stats", dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&stats);
    launch
        .arg(&logits_ptr)
        .arg(&stride)
        .arg(&vocab_i)
        .arg(&inv_t)
        .arg(&partial_ptr);
    // SAFETY: the pointers and sizes were checked above; each block reads its own slice.
    unsafe { launch.launch(per_slice) }.w()?;
    let choose = function(&device, "sample_choose", dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&choose);
    launch
        .arg(&logits_ptr)
        .arg(&stride)
        .arg(&vocab_i)
        .arg(&partial_ptr)
        .arg(&inv_t)
        .arg(&log_min_p)
        .arg(&noise_ptr)
        .arg(&choice_ptr);
    // SAFETY: as above; `noise` has a value for every logit.
    unsafe { launch.launch(per_slice) }.w()?;
    let finish = function(&device, "sample_finish", dtype, MODULE, PTX)?;
    let mut launch = stream.launch_builder(&finish);
    launch
        .arg(&logits_ptr)
        .arg(&stride)
        .arg(&partial_ptr)
        .arg(&choice_ptr)
        .arg(&blocks_i)
        .arg(&rows_i)
        .arg(&inv_t)
        .arg(&tempered)
        .arg(&out_ptr);
    let config = LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (32, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: as above; the drawn index is inside the row.
    unsafe { launch.launch(config) }.w()?;
    Ok(out)
}
