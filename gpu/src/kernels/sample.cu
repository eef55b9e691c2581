// Greedy choice of the next token for each row of logits, with its log-probability, in two
// kernels (lamar's own; `Sampler::next` in `src/sampling.rs` at temperature 0):
//   greedy_partial: grid (blocks, rows): each block scans a slice of the vocabulary keeping the
//     largest logit (the first on ties), its index, and sum(exp(logit - largest)) (float).
//   greedy_finish:  one warp per row joins the slices: out[row] = index (as float, exact below
//     2^24), out[rows + row] = log-probability = -log(sum(exp(logit - largest))).

#include "common.cuh"

struct Best {
    float max;
    int index;
    float sum;  // of exp(logit - max)
};

__device__ __forceinline__ Best join(Best a, Best b) {
    if (b.max == -INFINITY) return a;
    if (a.max == -INFINITY) return b;
    const float m = fmaxf(a.max, b.max);
    Best r;
    r.max = m;
    r.index = (a.max > b.max || (a.max == b.max && a.index < b.index)) ? a.index : b.index;
    r.sum = a.sum * expf(a.max - m) + b.sum * expf(b.max - m);
    return r;
}

__device__ __forceinline__ Best warp_join(Best x) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        Best o;
        o.max = __shfl_xor_sync(0xffffffffu, x.max, offset);
        o.index = __shfl_xor_sync(0xffffffffu, x.index, offset);
        o.sum = __shfl_xor_sync(0xffffffffu, x.sum, offset);
        x = join(x, o);
    }
    return x;
}

template <typename T>
__device__ void greedy_partial(const T* logits, int64_t stride, int vocab, float* partial) {
    const int block = blockIdx.x, blocks = gridDim.x;
    const int64_t row = blockIdx.y;
    const int slice = (vocab + blocks - 1) / blocks;
    const int begin = block * slice, end = min(vocab, begin + slice);
    Best best{-INFINITY, 0, 0.0f};
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const float x = to_float(logits[row * stride + i]);
        Best one{x, i, 1.0f};
        best = join(best, one);
    }
    best = warp_join(best);
    __shared__ Best warps[32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) warps[warp] = best;
    __syncthreads();
    if (warp == 0) {
        Best b = lane < blockDim.x / 32 ? warps[lane] : Best{-INFINITY, 0, 0.0f};
        b = warp_join(b);
        if (lane == 0) {
            float* out = partial + (row * blocks + block) * 3;
            out[0] = b.max;
            out[1] = __int_as_float(b.index);
            out[2] = b.sum;
        }
    }
}

__device__ void greedy_finish(const float* partial, int blocks, int rows, float* out) {
    const int64_t row = blockIdx.x;
    Best best{-INFINITY, 0, 0.0f};
    for (int i = threadIdx.x; i < blocks; i += 32) {
        const float* p = partial + (row * blocks + i) * 3;
        Best one{p[0], __float_as_int(p[1]), p[2]};
        best = join(best, one);
    }
    best = warp_join(best);
    if (threadIdx.x == 0) {
        out[row] = (float)best.index;
        out[rows + row] = -logf(best.sum);
    }
}

extern "C" __global__ void greedy_partial_f32(const float* logits, int64_t stride, int vocab,
                                              float* partial) {
    greedy_partial<float>(logits, stride, vocab, partial);
}
extern "C" __global__ void greedy_partial_bf16(const __nv_bfloat16* logits, int64_t stride,
                                               int vocab, float* partial) {
    greedy_partial<__nv_bfloat16>(logits, stride, vocab, partial);
}
extern "C" __global__ void greedy_finish_f32(const float* partial, int blocks, int rows,
                                             float* out) {
    greedy_finish(partial, blocks, rows, out);
}

// Inside a CUDA graph of several greedy decoding steps: after a step's greedy choice `picked`
// (2B: indices as float, then log-probabilities), record it in `record` (2B floats) and make
// the next step's inputs: ids[r] = picked[r], positions[r] += 1, and the key/value column and
// length `counters` (2) one further. One thread per row (one block of at least B threads).
extern "C" __global__ void greedy_advance_f32(const float* picked, float* record, unsigned int* ids,
                                              float* positions, unsigned int* counters, int rows) {
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r == 0) {
        counters[0] += 1;
        counters[1] += 1;
    }
    if (r >= rows) return;
    record[r] = picked[r];
    record[rows + r] = picked[rows + r];
    ids[r] = (unsigned int)picked[r];
    positions[r] += 1.0f;
}
