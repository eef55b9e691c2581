//! The wgpu retrieval path against the CPU path (`lamar_core::pseudo::retrieve`): the same
//! neighbours, in the same order, ties included, on small-integer matrices (every dot product
//! exact in f32 and in f16 storage, so any summation order gives the same scores and the many
//! ties must be broken alike), across tile and run boundaries, corpus blocks and query batches.
//!
//! Needs a GPU adapter: CI runs these on Mesa's software Vulkan driver (lavapipe). Without
//! one they are skipped with a message, unless LAMAR_REQUIRE_WGPU is set (as CI sets it), which
//! makes a missing adapter a failure.

use lamar_core::pseudo::retrieve::{Embeddings, top_candidates};
use lamar_model::retrieve::{GpuRetriever, Storage};
use proptest::prelude::*;
use std::sync::OnceLock;

fn retriever() -> Option<&'static GpuRetriever> {
    static CELL: OnceLock<Option<GpuRetriever>> = OnceLock::new();
    CELL.get_or_init(|| match GpuRetriever::new() {
        Ok(r) => {
            eprintln!("wgpu adapter: {}", r.adapter());
            Some(r)
        }
        Err(e) if std::env::var_os("LAMAR_REQUIRE_WGPU").is_some() => {
            panic!("LAMAR_REQUIRE_WGPU is set but {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    })
    .as_ref()
}

fn matrix(rows: usize, dim: usize, values: &[i8]) -> Vec<f32> {
    (0..rows * dim)
        .map(|k| values[k % values.len()] as f32)
        .collect()
}

fn check(
    gpu: &GpuRetriever,
    queries: &[f32],
    corpus: &[f32],
    dim: usize,
    candidates: usize,
    storage: Storage,
) -> Result<(), TestCaseError> {
    let q = Embeddings::new(queries, dim).unwrap();
    let c = Embeddings::new(corpus, dim).unwrap();
    let want = top_candidates(q, c, candidates);
    let uploaded = gpu.upload(c, storage).unwrap();
    let got = gpu.top_candidates(&uploaded, q, candidates).unwrap();
    prop_assert_eq!(got.len(), want.len());
    for (row, (g, w)) in got.iter().zip(&want).enumerate() {
        prop_assert_eq!(g, w, "query {}", row);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn gpu_and_cpu_agree_on_integer_matrices(
        query_rows in 1usize..80,
        corpus_rows in 1usize..4500,
        dim in 1usize..40,
        candidates in 1usize..130,
        values in prop::collection::vec(-3i8..=3, 7..64),
        shift in 0usize..50,
        half in any::<bool>(),
    ) {
        let Some(gpu) = retriever() else { return Ok(()) };
        let corpus = matrix(corpus_rows, dim, &values);
        let mut rotated = values.clone();
        rotated.rotate_left(shift % values.len());
        let queries = matrix(query_rows, dim, &rotated);
        let storage = if half { Storage::F16 } else { Storage::F32 };
        check(gpu, &queries, &corpus, dim, candidates, storage)?;
    }
}

#[test]
fn many_blocks_and_query_batches_agree_with_the_cpu() {
    let Some(shared) = retriever() else { return };
    // A small binding cap: the corpus goes up in three blocks and the queries in two batches.
    let gpu = shared.with_binding_bytes(1024 * 1024);
    let dim = 16;
    let corpus = matrix(5000, dim, &[1, -2, 0, 3, 1, 1, -1, 2, 0, 0, 2, -3, 1]);
    let queries = matrix(200, dim, &[2, 0, -1, 1, 3, -2, 0, 1, 1]);
    let uploaded = gpu
        .upload(Embeddings::new(&corpus, dim).unwrap(), Storage::F32)
        .unwrap();
    assert_eq!(uploaded.blocks(), 3);
    check(&gpu, &queries, &corpus, dim, 100, Storage::F32).unwrap();
}

#[test]
fn a_retriever_reused_for_larger_and_smaller_searches_keeps_agreeing_with_the_cpu() {
    // A fresh device of its own: its kept buffers (queries, scores, candidates, readback) grow
    // with the second search and hold the larger search's values when the third, smaller one
    // runs in them.
    let Some(shared) = retriever() else { return };
    let gpu = shared.with_binding_bytes(usize::MAX);
    let dim = 24;
    let values = [1, -2, 0, 3, 1, 1, -1, 2, 0, 0, 2, -3, 1];
    for (queries, corpus, candidates) in [(30, 700, 20), (150, 2600, 120), (7, 300, 9)] {
        let q = matrix(queries, dim, &values[3..]);
        let c = matrix(corpus, dim, &values);
        check(&gpu, &q, &c, dim, candidates, Storage::F32).unwrap();
    }
}

#[test]
fn real_valued_unit_vectors_find_their_own_copies() {
    let Some(gpu) = retriever() else { return };
    let dim = 48;
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let mut corpus: Vec<f32> = (0..3000 * dim).map(|_| next()).collect();
    for row in corpus.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    let queries: Vec<f32> = (0..40)
        .flat_map(|k| corpus[k * 71 * dim..(k * 71 + 1) * dim].to_vec())
        .collect();
    for storage in [Storage::F32, Storage::F16] {
        let uploaded = gpu
            .upload(Embeddings::new(&corpus, dim).unwrap(), storage)
            .unwrap();
        let found = gpu
            .top_candidates(&uploaded, Embeddings::new(&queries, dim).unwrap(), 5)
            .unwrap();
        for (k, row) in found.iter().enumerate() {
            assert_eq!(row[0].index, k * 71, "{storage:?}: query {k} found {row:?}");
            assert!(
                (row[0].score - 1.0).abs() < 2e-3,
                "{storage:?}: {}",
                row[0].score
            );
            assert!(row.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }
}

#[test]
fn bad_inputs_are_errors() {
    let Some(gpu) = retriever() else { return };
    let corpus = vec![1.0f32; 8 * 4];
    let uploaded = gpu
        .upload(Embeddings::new(&corpus, 4).unwrap(), Storage::F32)
        .unwrap();
    let narrow = vec![1.0f32; 3];
    let err = gpu
        .top_candidates(&uploaded, Embeddings::new(&narrow, 3).unwrap(), 2)
        .unwrap_err();
    assert!(err.to_string().contains("3 values per row"), "{err}");
    let nan = vec![1.0, f32::NAN, 0.0, 0.0];
    let err = gpu
        .top_candidates(&uploaded, Embeddings::new(&nan, 4).unwrap(), 2)
        .unwrap_err();
    assert!(err.to_string().contains("queries row 0"), "{err}");
    let ok = vec![1.0f32; 4];
    let err = gpu
        .top_candidates(&uploaded, Embeddings::new(&ok, 4).unwrap(), 5000)
        .unwrap_err();
    assert!(err.to_string().contains("5000 candidates"), "{err}");
    // Beyond half precision's range: refused for f16 storage, taken in f32.
    let mut wide = vec![0.5f32; 2 * 4];
    wide[6] = 1e5;
    let err = match gpu.upload(Embeddings::new(&wide, 4).unwrap(), Storage::F16) {
        Err(e) => e,
        Ok(_) => panic!("a value of 1e5 stored as f16"),
    };
    assert!(err.to_string().contains("corpus row 1"), "{err}");
    assert!(
        gpu.upload(Embeddings::new(&wide, 4).unwrap(), Storage::F32)
            .is_ok()
    );
    // Fewer corpus rows than candidates: all of them.
    let all = gpu
        .top_candidates(&uploaded, Embeddings::new(&ok, 4).unwrap(), 20)
        .unwrap();
    assert_eq!(all[0].len(), 8);
    assert_eq!(
        all[0].iter().map(|n| n.index).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
}
