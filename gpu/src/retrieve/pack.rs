//! Matrices into the bytes the shaders read: rows zero-padded, f32 or f16, written straight
//! into wgpu's mapped or staging memory (no host copy of the packed matrix first).

use super::types::{RetrieveError, Storage};
use lamar_core::pseudo::retrieve::Embeddings;
use wgpu::WriteOnly;

pub(super) fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Writes `rows` rows of `matrix` from row `first` into `out`, each padded with zero values to
/// `padded_dim`, then zero rows to the end of `out` (whose length sets the padded row count).
/// Every byte of `out` is written, so it may hold anything before (staging memory does).
///
/// # Panics
/// If `out` is shorter than `rows` padded rows or a row is longer than `padded_dim` (callers
/// size both from the matrix).
pub(super) fn pack_into(
    mut out: WriteOnly<'_, [u8]>,
    matrix: &Embeddings,
    first: usize,
    rows: usize,
    padded_dim: usize,
    storage: Storage,
) {
    let width = storage.bytes();
    let row_bytes = padded_dim * width;
    let mut halves = Vec::new();
    for r in 0..rows {
        let row = matrix.row(first + r);
        let base = r * row_bytes;
        let used = row.len() * width;
        let mut values = out.slice(base..base + used);
        match storage {
            // Whole rows at once (every wgpu backend is little-endian, as the shaders read).
            Storage::F32 => values.copy_from_slice(bytemuck::cast_slice(row)),
            Storage::F16 => {
                halves.clear();
                halves.extend(
                    row.iter()
                        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes()),
                );
                values.copy_from_slice(&halves);
            }
        }
        out.slice(base + used..base + row_bytes).fill(0);
    }
    out.slice(rows * row_bytes..).fill(0);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs rows 1..3 of a 4 x 3 matrix to 5 padded rows of 4 values into a buffer full of
    /// 0xAB, as staging memory may be, and reads the values back.
    fn packed(storage: Storage) -> Vec<u8> {
        let data: Vec<f32> = (0..12).map(|k| k as f32 * 0.5 - 1.0).collect();
        let matrix = Embeddings::new(&data, 3).expect("12 values of width 3");
        let mut out = vec![0xAB_u8; 5 * 4 * storage.bytes()];
        pack_into(WriteOnly::from(&mut out[..]), &matrix, 1, 2, 4, storage);
        out
    }

    fn expected_values() -> Vec<f32> {
        let mut want = vec![0.0_f32; 5 * 4];
        for (r, source) in [1, 2].into_iter().enumerate() {
            for c in 0..3 {
                want[r * 4 + c] = (source * 3 + c) as f32 * 0.5 - 1.0;
            }
        }
        want
    }

    #[test]
    fn f32_rows_land_in_place_and_every_padding_byte_is_zeroed() {
        let out = packed(Storage::F32);
        let values: Vec<f32> = out
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(values, expected_values());
    }

    #[test]
    fn f16_rows_are_converted_and_every_padding_byte_is_zeroed() {
        let out = packed(Storage::F16);
        let values: Vec<f32> = out
            .chunks_exact(2)
            .map(|b| f32::from(half::f16::from_le_bytes([b[0], b[1]])))
            .collect();
        // Every value here (multiples of 0.5 below 5) is exact in half precision.
        assert_eq!(values, expected_values());
    }
}
