//! Opening the compute device.

use candle_core::{Device, Result};

/// Opens CUDA device `ordinal` as lamar uses it:
///
/// * One stream for all work. cudarc then needs no events to order uses across streams, so
///   event tracking is turned off before any tensor exists (with it on, every allocation
///   creates and destroys two CUDA events: host time that a decoding step of thousands of small
///   operations pays thousands of times).
/// * Freed device memory stays in the device's memory pool (cudarc allocates with
///   `cuMemAllocAsync` from it). By default the pool hands free memory back to the driver
///   whenever the host waits for the device, and the next large allocations then map fresh
///   memory: a prefill, whose tensors are tens of megabytes, paid that again and again.
///
/// Without the `cuda` feature this is candle's "not compiled with CUDA" error.
pub fn open_cuda(ordinal: usize) -> Result<Device> {
    let device = Device::new_cuda(ordinal)?;
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = &device {
        use candle_core::cuda_backend::WrapErr;
        use candle_core::cuda_backend::cudarc::driver::{result, sys};
        // SAFETY: every tensor lamar makes lives and is used on this device's one stream.
        unsafe { cuda.disable_event_tracking() };
        let device_id = cuda.cuda_stream().context().cu_device();
        let mut keep_everything: u64 = u64::MAX;
        // SAFETY: the device handle comes from the open context; the release threshold
        // attribute takes a u64.
        unsafe {
            let pool = result::device::get_default_mem_pool(device_id).w()?;
            result::mem_pool::set_attribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&raw mut keep_everything).cast(),
            )
            .w()?;
        }
    }
    Ok(device)
}
