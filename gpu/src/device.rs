//! Opening the compute device.

use candle_core::{Device, Result};

/// Opens CUDA device `ordinal` as lamar uses it: one stream for all work. cudarc then needs no
/// events to order uses across streams, so event tracking is turned off before any tensor
/// exists (with it on, every allocation creates and destroys two CUDA events: host time that
/// a decoding step of thousands of small operations pays thousands of times).
/// Without the `cuda` feature this is candle's "not compiled with CUDA" error.
pub fn open_cuda(ordinal: usize) -> Result<Device> {
    let device = Device::new_cuda(ordinal)?;
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = &device {
        // SAFETY: every tensor lamar makes lives and is used on this device's one stream.
        unsafe { cuda.disable_event_tracking() };
    }
    Ok(device)
}
