// The best `keep` of one query's entries, best first: higher score, then lower index (the CPU
// path's order). One workgroup per query, over all of its entries:
//
// 1. Radix selection of the threshold: scores become 32-bit keys whose unsigned order is the
//    scores' order; four passes over the entries, each counting the next eight bits of the keys
//    that match the bits chosen so far, find the key of the `keep`-th best entry exactly, and
//    how many of the entries with that key are still wanted.
// 2. Compaction: every entry above the threshold, and the first wanted entries at it (in entry
//    order, which is index order), into workgroup memory. Each thread takes one contiguous run
//    of entries; a prefix sum over the threads gives each its places.
// 3. A bitonic sort of those (at most 1,024) entries, written out best first.
//
// FROM_SCORES (between double underscores) is replaced by the host: `true` reads a row of the similarity block (the index is
// the corpus row: `index_offset` + column), `false` reads earlier candidates (the index is
// stored beside the score), for merging the candidates of several corpus blocks.

struct Params {
    // Entries per query in the input (columns of the block, or candidates so far).
    entries: u32,
    // Of those, the real ones (the rest are padding and never read).
    valid: u32,
    // Scores: added to a column to make the corpus row.
    index_offset: u32,
    // Entries kept (at most MAX_KEEP).
    keep: u32,
    // Output entries per query.
    out_stride: u32,
    // Output slot (of `keep` entries) of this dispatch.
    out_slot: u32,
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

const THREADS: u32 = 256u;
const MAX_KEEP: u32 = 1024u;
const NONE: u32 = 0xffffffffu;
// The score of padding entries: the lowest finite f32 (a constant infinity is an error in
// WGSL), with index NONE, so they sort after every real entry; the host never reads them.
const LOWEST: f32 = -3.40282347e38;

var<workgroup> histogram: array<atomic<u32>, 256>;
// The threshold's key bits chosen so far, and how many entries with those bits are wanted.
var<workgroup> chosen_bits: u32;
var<workgroup> still_wanted: u32;
var<workgroup> above_before: array<u32, 256>;
var<workgroup> ties_before: array<u32, 256>;
var<workgroup> kept_scores: array<f32, 1024>;
var<workgroup> kept_index: array<u32, 1024>;

fn read_entry(query: u32, column: u32) -> Candidate {
    let at = query * params.entries + column;
    if (__FROM_SCORES__) {
        return Candidate(scores[at], params.index_offset + column);
    }
    return candidates_in[at];
}

// A key whose unsigned order is the score's order (-0 and +0 alike, as they compare equal).
fn key_of(score: f32) -> u32 {
    let bits = select(bitcast<u32>(score), 0u, score == 0.0);
    if ((bits & 0x80000000u) != 0u) {
        return ~bits;
    }
    return bits | 0x80000000u;
}

// Whether entry a goes before entry b.
fn before(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    return sa > sb || (sa == sb && ia < ib);
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let query = group.y;
    let t = local.x;
    let count = params.valid;
    let want = min(params.keep, count);
    if (t == 0u) {
        chosen_bits = 0u;
        still_wanted = want;
    }
    // 1. The threshold key, eight bits a pass from the top.
    var mask = 0u;
    for (var round = 0u; round < 4u; round++) {
        let shift = 24u - 8u * round;
        atomicStore(&histogram[t], 0u);
        workgroupBarrier();
        let bits = chosen_bits;
        for (var c = t; c < count; c += THREADS) {
            let key = key_of(read_entry(query, c).score);
            if ((key & mask) == bits) {
                atomicAdd(&histogram[(key >> shift) & 255u], 1u);
            }
        }
        workgroupBarrier();
        if (t == 0u) {
            var wanted = still_wanted;
            var digit = 255u;
            loop {
                let n = atomicLoad(&histogram[digit]);
                if (n >= wanted || digit == 0u) {
                    break;
                }
                wanted -= n;
                digit -= 1u;
            }
            still_wanted = wanted;
            chosen_bits = bits | (digit << shift);
        }
        workgroupBarrier();
        mask |= 255u << shift;
    }
    let threshold = chosen_bits;
    let ties_wanted = still_wanted;
    let above_total = want - ties_wanted;
    // 2. Compaction, each thread over one contiguous run of entries.
    let run = (count + THREADS - 1u) / THREADS;
    let begin = min(t * run, count);
    let end = min(begin + run, count);
    var above = 0u;
    var ties = 0u;
    for (var c = begin; c < end; c++) {
        let key = key_of(read_entry(query, c).score);
        above += select(0u, 1u, key > threshold);
        ties += select(0u, 1u, key == threshold);
    }
    above_before[t] = above;
    ties_before[t] = ties;
    workgroupBarrier();
    for (var offset = 1u; offset < THREADS; offset <<= 1u) {
        var more_above = 0u;
        var more_ties = 0u;
        if (t >= offset) {
            more_above = above_before[t - offset];
            more_ties = ties_before[t - offset];
        }
        workgroupBarrier();
        above_before[t] += more_above;
        ties_before[t] += more_ties;
        workgroupBarrier();
    }
    var above_at = above_before[t] - above;
    var tie_at = ties_before[t] - ties;
    for (var c = begin; c < end; c++) {
        let entry = read_entry(query, c);
        let key = key_of(entry.score);
        if (key > threshold) {
            kept_scores[above_at] = entry.score;
            kept_index[above_at] = entry.index;
            above_at += 1u;
        } else if (key == threshold) {
            if (tie_at < ties_wanted) {
                kept_scores[above_total + tie_at] = entry.score;
                kept_index[above_total + tie_at] = entry.index;
            }
            tie_at += 1u;
        }
    }
    // 3. Sort: padded to a power of two with entries that go last.
    var size = 2u;
    while (size < want) {
        size <<= 1u;
    }
    for (var e = want + t; e < size; e += THREADS) {
        kept_scores[e] = LOWEST;
        kept_index[e] = NONE;
    }
    workgroupBarrier();
    for (var span = 2u; span <= size; span <<= 1u) {
        for (var stride = span >> 1u; stride > 0u; stride >>= 1u) {
            for (var pair = t; pair < size / 2u; pair += THREADS) {
                let low = 2u * pair - (pair & (stride - 1u));
                let high = low + stride;
                let best_first = (low & span) == 0u;
                let sl = kept_scores[low];
                let il = kept_index[low];
                let sh = kept_scores[high];
                let ih = kept_index[high];
                if (before(sh, ih, sl, il) == best_first) {
                    kept_scores[low] = sh;
                    kept_index[low] = ih;
                    kept_scores[high] = sl;
                    kept_index[high] = il;
                }
            }
            workgroupBarrier();
        }
    }
    for (var e = t; e < params.keep; e += THREADS) {
        let at = query * params.out_stride + params.out_slot * params.keep + e;
        if (e < want) {
            candidates_out[at] = Candidate(kept_scores[e], kept_index[e]);
        } else {
            candidates_out[at] = Candidate(LOWEST, NONE);
        }
    }
}
