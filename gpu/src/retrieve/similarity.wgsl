// Similarities of a batch of queries with a block of corpus rows: scores[q, r] = sum_k
// queries[q, k] * corpus[r, k], both row-major with `dim` values per row (a multiple of 16,
// zero-padded), the sum taken in k order for every output so that the result does not depend
// on the tiling.
//
// One workgroup makes a 128 x 128 tile of scores. Each of its 16 x 16 threads makes 8 x 8 of
// them: query rows 4 ty .. 4 ty + 3 and 64 + 4 ty .. 64 + 4 ty + 3, corpus rows likewise from
// tx, so that its operands are two vec4 reads of workgroup memory each per step of k. The
// tiles hold 16 values of k at a time, transposed ([k][row], rows packed four to a vec4); the
// next tile's values are read from storage into registers while this one is multiplied.
//
// Filled in by the host (retrieve/shaders.rs), each name between double underscores:
// - STORAGE: the element type of the two inputs, vec4<f32> (f32 storage) or vec2<u32> (f16
//   storage, two halves per word); LOAD_QUERIES / LOAD_CORPUS: four consecutive values of a
//   row as a vec4<f32>.
// - DECLARE / MULTIPLY / STORE: the 16 vec4 accumulators, one step of k over them (64 products
//   spelled out, so that no array is indexed and everything stays in registers), and their
//   writing out.

struct Dims {
    // Query rows in this batch (a multiple of 128, zero rows at the end).
    query_rows: u32,
    // Corpus rows in this block (a multiple of 128).
    corpus_rows: u32,
    // Values per row (a multiple of 16).
    dim: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> queries: array<__STORAGE__>;
@group(0) @binding(1) var<storage, read> corpus: array<__STORAGE__>;
@group(0) @binding(2) var<storage, read_write> scores: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> dims: Dims;

const TILE: u32 = 128u;
const DEPTH: u32 = 16u;
// vec4s of one k in a tile.
const PACKED: u32 = 32u;

var<workgroup> query_tile: array<vec4<f32>, 512>;
var<workgroup> corpus_tile: array<vec4<f32>, 512>;

fn load_queries(index: u32) -> vec4<f32> {
    __LOAD_QUERIES__
}

fn load_corpus(index: u32) -> vec4<f32> {
    __LOAD_CORPUS__
}

// Value `e` of a staged vec4 into its transposed place: k = 4 quad + e of row `row`.
fn stage(tile_is_query: bool, quad: u32, row: u32, values: vec4<f32>) {
    for (var e = 0u; e < 4u; e++) {
        let at = (4u * quad + e) * PACKED + row / 4u;
        if (tile_is_query) {
            query_tile[at][row % 4u] = values[e];
        } else {
            corpus_tile[at][row % 4u] = values[e];
        }
    }
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
    let quads = dims.dim / 4u;
    // Each thread reads two vec4s of each tile per step: tile vec4 v = thread + 256 p is
    // row v / 4, values 4 (v % 4) .. 4 (v % 4) + 3 of the step.
    let load_row_a = thread / 4u;
    let load_row_b = load_row_a + 64u;
    let load_quad = thread % 4u;
    __DECLARE__
    var qa = load_queries((row0 + load_row_a) * quads + load_quad);
    var qb = load_queries((row0 + load_row_b) * quads + load_quad);
    var ca = load_corpus((col0 + load_row_a) * quads + load_quad);
    var cb = load_corpus((col0 + load_row_b) * quads + load_quad);
    for (var k0 = 0u; k0 < dims.dim; k0 += DEPTH) {
        workgroupBarrier();
        stage(true, load_quad, load_row_a, qa);
        stage(true, load_quad, load_row_b, qb);
        stage(false, load_quad, load_row_a, ca);
        stage(false, load_quad, load_row_b, cb);
        workgroupBarrier();
        let next = k0 + DEPTH;
        if (next < dims.dim) {
            let step = next / 4u + load_quad;
            qa = load_queries((row0 + load_row_a) * quads + step);
            qb = load_queries((row0 + load_row_b) * quads + step);
            ca = load_corpus((col0 + load_row_a) * quads + step);
            cb = load_corpus((col0 + load_row_b) * quads + step);
        }
        for (var k = 0u; k < DEPTH; k++) {
            let a0 = query_tile[k * PACKED + ty];
            let a1 = query_tile[k * PACKED + 16u + ty];
            let b0 = corpus_tile[k * PACKED + tx];
            let b1 = corpus_tile[k * PACKED + 16u + tx];
            __MULTIPLY__
        }
    }
    // Scores row r holds corpus_rows / 4 vec4s; this thread's columns are the vec4s
    // col0 / 4 + tx and col0 / 4 + 16 + tx.
    let stride = dims.corpus_rows / 4u;
    let first = col0 / 4u + tx;
    __STORE__
}
