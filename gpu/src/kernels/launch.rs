//! What every launcher here needs: checked device addresses of tensors and the kernel for a
//! dtype.

use candle_core::cuda_backend::CudaStorageSlice;
use candle_core::cuda_backend::cudarc::driver::{CudaFunction, DevicePtr};
use candle_core::{CudaDevice, DType, Device, Result, Storage, Tensor, bail};

/// The device address of a tensor's first element and the distance between its rows (in
/// elements), checking its dtype, that its last axis is contiguous and that its rows (all axes
/// but the last, flattened) are evenly spaced, as in a view of some columns of a matrix.
pub(crate) fn address(t: &Tensor, dtype: DType, what: &str) -> Result<(u64, i64)> {
    if t.dtype() != dtype {
        bail!(
            "lamar kernel: {what} is {:?}, expected {dtype:?}",
            t.dtype()
        );
    }
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cuda(cuda) = &*storage else {
        bail!("lamar kernel: {what} is not on a CUDA device");
    };
    if layout.stride().last() != Some(&1) {
        bail!("lamar kernel: {what}'s last axis is not contiguous");
    }
    let stream = cuda.device.cuda_stream();
    let (base, size) = match &cuda.slice {
        CudaStorageSlice::F32(s) => (s.device_ptr(&stream).0, 4),
        CudaStorageSlice::BF16(s) => (s.device_ptr(&stream).0, 2),
        CudaStorageSlice::U32(s) => (s.device_ptr(&stream).0, 4),
        CudaStorageSlice::F64(s) => (s.device_ptr(&stream).0, 8),
        _ => bail!("lamar kernel: {what} has an unsupported dtype"),
    };
    let (dims, strides) = (layout.dims(), layout.stride());
    let rank = dims.len();
    let row = if rank >= 2 { strides[rank - 2] } else { 0 };
    for i in 0..rank.saturating_sub(2) {
        if dims[i] > 1 && strides[i] != strides[i + 1] * dims[i + 1] {
            bail!("lamar kernel: {what}'s rows are not evenly spaced");
        }
    }
    Ok((base + (layout.start_offset() * size) as u64, row as i64))
}

/// [`address`] of a tensor that must be contiguous as a whole.
pub(crate) fn contiguous_address(t: &Tensor, dtype: DType, what: &str) -> Result<u64> {
    if !t.is_contiguous() {
        bail!("lamar kernel: {what} is not contiguous");
    }
    Ok(address(t, dtype, what)?.0)
}

/// The CUDA device a tensor lives on.
pub(crate) fn cuda_device(t: &Tensor) -> Result<CudaDevice> {
    match t.device() {
        Device::Cuda(d) => Ok(d.clone()),
        _ => bail!("lamar kernel: the inputs are not on a CUDA device"),
    }
}

/// Kernel `{name}_{f32|bf16}` of a PTX module (loaded once per device); launch it on the
/// device's stream (`device.cuda_stream().launch_builder(&f)`).
pub(crate) fn function(
    device: &CudaDevice,
    name: &str,
    dtype: DType,
    module: &str,
    ptx: &str,
) -> Result<CudaFunction> {
    let suffix = match dtype {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        other => bail!("lamar kernel: {name} has no {other:?} version"),
    };
    Ok(device
        .get_or_load_custom_func(&format!("{name}_{suffix}"), module, ptx)?
        .into_cuda_function())
}

/// Lets `func` use `bytes` of dynamic shared memory (past the default 48 KB, up to the device's
/// opt-in limit); false when the device allows less (the caller falls back then).
pub(crate) fn allow_shared_memory(
    device: &CudaDevice,
    func: &CudaFunction,
    bytes: usize,
) -> Result<bool> {
    use candle_core::cuda_backend::WrapErr;
    use candle_core::cuda_backend::cudarc::driver::sys::{
        CUdevice_attribute, CUfunction_attribute_enum,
    };
    let allowed = device
        .cuda_stream()
        .context()
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
        .w()?;
    let Ok(bytes) = i32::try_from(bytes) else {
        return Ok(false);
    };
    if bytes > allowed {
        return Ok(false);
    }
    func.set_attribute(
        CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        bytes,
    )
    .w()?;
    Ok(true)
}
