// The best `keep` entries of runs of 2,048 (score, index) entries, best first: higher score,
// then lower index (the CPU path's order). One workgroup sorts one run of one query in
// workgroup memory with a bitonic network and writes its first `keep` entries.
//
// FROM_SCORES is replaced by the host: `true` reads a row of the similarity block (the index is
// the corpus row: `index_offset` + column), `false` reads earlier candidates (the index is
// stored beside the score).

struct Params {
    // Entries per query in the input (columns of the block, or candidates so far).
    entries: u32,
    // Of those, the real ones (the rest are padding and never chosen).
    valid: u32,
    // Scores: added to a column to make the corpus row.
    index_offset: u32,
    // Entries kept per run.
    keep: u32,
    // Output entries per query.
    out_stride: u32,
    // Output run of this dispatch's first run.
    out_first_run: u32,
    _pad0: u32,
    _pad1: u32,
}

struct Candidate {
    score: f32,
    index: u32,
}

@group(0) @binding(0) var<storage, read> scores: array<f32>;
@group(0) @binding(1) var<storage, read> candidates_in: array<Candidate>;
@group(0) @binding(2) var<storage, read_write> candidates_out: array<Candidate>;
@group(0) @binding(3) var<uniform> params: Params;

const RUN: u32 = 2048u;
const THREADS: u32 = 256u;
const NONE: u32 = 0xffffffffu;

var<workgroup> run_scores: array<f32, 2048>;
var<workgroup> run_index: array<u32, 2048>;

// Whether entry a goes before entry b.
fn before(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    return sa > sb || (sa == sb && ia < ib);
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let run = group.x;
    let query = group.y;
    let lowest = bitcast<f32>(0xff800000u);
    for (var e = local.x; e < RUN; e += THREADS) {
        let column = run * RUN + e;
        var score = lowest;
        var index = NONE;
        if (column < params.valid) {
            let at = query * params.entries + column;
            if (FROM_SCORES) {
                score = scores[at];
                index = params.index_offset + column;
            } else {
                score = candidates_in[at].score;
                index = candidates_in[at].index;
            }
        }
        run_scores[e] = score;
        run_index[e] = index;
    }
    workgroupBarrier();
    for (var size = 2u; size <= RUN; size <<= 1u) {
        for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (var pair = local.x; pair < RUN / 2u; pair += THREADS) {
                let low = 2u * pair - (pair & (stride - 1u));
                let high = low + stride;
                let best_first = (low & size) == 0u;
                let sl = run_scores[low];
                let il = run_index[low];
                let sh = run_scores[high];
                let ih = run_index[high];
                let high_first = before(sh, ih, sl, il);
                if (high_first == best_first) {
                    run_scores[low] = sh;
                    run_index[low] = ih;
                    run_scores[high] = sl;
                    run_index[high] = il;
                }
            }
            workgroupBarrier();
        }
    }
    for (var e = local.x; e < params.keep; e += THREADS) {
        let at = query * params.out_stride + (params.out_first_run + run) * params.keep + e;
        candidates_out[at] = Candidate(run_scores[e], run_index[e]);
    }
}
