//! Matrices into the bytes the shaders read: rows zero-padded, f32 or f16.

use super::types::{RetrieveError, Storage};
use lamar_core::pseudo::retrieve::Embeddings;

pub(super) fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// `rows` rows of `matrix`, padded with zero values to `padded_dim` and with zero rows to
/// `padded_rows`, as bytes of the storage type.
pub(super) fn pack(
    matrix: &Embeddings,
    first: usize,
    rows: usize,
    padded_rows: usize,
    padded_dim: usize,
    storage: Storage,
) -> Vec<u8> {
    let mut out = vec![0u8; padded_rows * padded_dim * storage.bytes()];
    for r in 0..rows {
        let row = matrix.row(first + r);
        let base = r * padded_dim * storage.bytes();
        let dst = &mut out[base..base + row.len() * storage.bytes()];
        match storage {
            // Whole rows at once (every wgpu backend is little-endian, as the shaders read).
            Storage::F32 => dst.copy_from_slice(bytemuck::cast_slice(row)),
            Storage::F16 => {
                for (bytes, &x) in dst.chunks_exact_mut(2).zip(row) {
                    bytes.copy_from_slice(&half::f16::from_f32(x).to_le_bytes());
                }
            }
        }
    }
    out
}

/// Every value finite, and within half precision's range when stored as f16 (beyond it the
/// values would become infinities, and the scores NaN).
pub(super) fn check_storable(
    matrix: &Embeddings,
    name: &'static str,
    storage: Storage,
) -> Result<(), RetrieveError> {
    if let Some(row) = (0..matrix.rows()).find(|&r| matrix.row(r).iter().any(|x| !x.is_finite())) {
        return Err(RetrieveError::NotFinite { matrix: name, row });
    }
    let half_max = f32::from(half::f16::MAX);
    if storage == Storage::F16
        && let Some(row) =
            (0..matrix.rows()).find(|&r| matrix.row(r).iter().any(|x| x.abs() > half_max))
    {
        return Err(RetrieveError::OutOfHalfRange { matrix: name, row });
    }
    Ok(())
}
