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
        for (k, &x) in row.iter().enumerate() {
            let at = base + k * storage.bytes();
            match storage {
                Storage::F32 => out[at..at + 4].copy_from_slice(&x.to_le_bytes()),
                Storage::F16 => {
                    out[at..at + 2].copy_from_slice(&half::f16::from_f32(x).to_le_bytes())
                }
            }
        }
    }
    out
}

pub(super) fn check_finite(matrix: &Embeddings, name: &'static str) -> Result<(), RetrieveError> {
    match (0..matrix.rows()).find(|&r| matrix.row(r).iter().any(|x| !x.is_finite())) {
        Some(row) => Err(RetrieveError::NotFinite { matrix: name, row }),
        None => Ok(()),
    }
}
