// Similarities of a batch of queries with a block of corpus rows: scores[q, r] = sum_k
// queries[q, k] * corpus[r, k], both row-major with `dim` values per row (a multiple of 16,
// zero-padded), the sum taken in k order for every output so that the result does not depend
// on the tiling. One workgroup makes a 128 x 128 tile of scores; each of its 16 x 16 threads
// makes 8 x 8 of them, rows `ty + 16 i` and columns `tx + 16 j`, from tiles of 8 values per row
// held in workgroup memory.
//
// LOAD_ROW is replaced by the host: four consecutive values of one row as a vec4<f32>, read
// from f32 storage (array<vec4<f32>>) or from f16 storage (array<vec2<u32>>, two halves per
// word, unpacked with unpack2x16float).

struct Dims {
    // Query rows in this batch (a multiple of 128, zero rows at the end).
    query_rows: u32,
    // Corpus rows in this block (a multiple of 128).
    corpus_rows: u32,
    // Values per row (a multiple of 16).
    dim: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> queries: array<STORAGE>;
@group(0) @binding(1) var<storage, read> corpus: array<STORAGE>;
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

const TILE: u32 = 128u;
const DEPTH: u32 = 8u;
const PER_THREAD: u32 = 8u;

// [k][row], padded by one column against bank conflicts.
var<workgroup> query_tile: array<array<f32, 129>, 8>;
var<workgroup> corpus_tile: array<array<f32, 129>, 8>;

fn load_queries(index: u32) -> vec4<f32> {
    LOAD_QUERIES
}

fn load_corpus(index: u32) -> vec4<f32> {
    LOAD_CORPUS
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let tx = local.x;
    let ty = local.y;
    let thread = ty * 16u + tx;
    let row0 = group.y * TILE;
    let col0 = group.x * TILE;
    // Each thread loads four consecutive values of one row of each tile per step.
    let load_row = thread / 2u;
    let load_k = (thread % 2u) * 4u;
    let quads = dims.dim / 4u;
    var acc: array<array<f32, 8>, 8>;
    for (var i = 0u; i < PER_THREAD; i++) {
        for (var j = 0u; j < PER_THREAD; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (var k0 = 0u; k0 < dims.dim; k0 += DEPTH) {
        let q = load_queries((row0 + load_row) * quads + (k0 + load_k) / 4u);
        let c = load_corpus((col0 + load_row) * quads + (k0 + load_k) / 4u);
        for (var e = 0u; e < 4u; e++) {
            query_tile[load_k + e][load_row] = q[e];
            corpus_tile[load_k + e][load_row] = c[e];
        }
        workgroupBarrier();
        for (var k = 0u; k < DEPTH; k++) {
            var a: array<f32, 8>;
            var b: array<f32, 8>;
            for (var i = 0u; i < PER_THREAD; i++) {
                a[i] = query_tile[k][ty + 16u * i];
                b[i] = corpus_tile[k][tx + 16u * i];
            }
            for (var i = 0u; i < PER_THREAD; i++) {
                for (var j = 0u; j < PER_THREAD; j++) {
                    acc[i][j] = acc[i][j] + a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < PER_THREAD; i++) {
        for (var j = 0u; j < PER_THREAD; j++) {
            scores[(row0 + ty + 16u * i) * dims.corpus_rows + col0 + tx + 16u * j] = acc[i][j];
        }
    }
}
