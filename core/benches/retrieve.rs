//! The CPU retrieval path on one thread: candidates one query at a time (each query reads the
//! whole corpus from memory) against `top_candidates` (groups of queries that stay in cache
//! while the corpus streams past once). Both give the same lists, bit for bit (the unit tests
//! check it).
//!
//! Run: `cargo bench -p lamar-core --bench retrieve`
//!
//! Input: random unit rows, 64 queries × 4,000 corpus rows × 2,560 values (the embedder's
//! width; the corpus, 41 MB, does not fit in cache), 100 candidates. NumPy's product on the same
//! shape, for scale: `python3 gpu/tools/retrieval_baselines.py 64 4000 2560 100`.

use criterion::{Criterion, criterion_group, criterion_main};
use lamar_core::pseudo::retrieve::{
    Embeddings, query_candidates, random_unit_rows, top_candidates,
};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let (queries, rows, dim, candidates) = (64, 4000, 2560, 100);
    let q = random_unit_rows(queries, dim, 1);
    let r = random_unit_rows(rows, dim, 2);
    let (q, r) = (
        Embeddings::new(&q, dim).expect("whole rows"),
        Embeddings::new(&r, dim).expect("whole rows"),
    );
    let mut group = c.benchmark_group("retrieve 64 x 4000 x 2560");
    group.sample_size(10);
    group.bench_function("one query at a time", |b| {
        b.iter(|| {
            let lists: Vec<_> = (0..queries)
                .map(|k| query_candidates(q.row(k), r, candidates))
                .collect();
            black_box(lists)
        })
    });
    group.bench_function("top_candidates (grouped)", |b| {
        b.iter(|| black_box(top_candidates(q, r, candidates)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
