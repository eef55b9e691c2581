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

// Sampling with temperature t and min-p (`Sampler::next` at temperature > 0 and top-p 1) in three
// kernels, for the Gumbel-max draw the candle path makes in about twenty-five launches:
//   sample_stats:  grid (blocks, rows): per slice the largest logit m and the sums
//     sum(exp(logit - m)) and sum(exp((logit - m) / t)) (float).
//   sample_choose: grid (blocks, rows): each block joins its row's largest logit M from the
//     slices, keeps the tokens whose probability is at least min_p times the largest one's,
//     (logit - M) / t >= log(min_p), and keeps the best of (logit - M) / t + g over them, with
//     Gumbel noise g = -log(-log u) from the uniform numbers `noise` (rows, vocab); the first index
//     on ties.
//   sample_finish: one warp per row joins the slices: out[row] = the drawn index (as float),
//     out[rows + row] = its log-probability under softmax(logit / t) (`tempered`) or softmax(logit).
// log(p) + g of the candle path differs from (logit - M) / t + g by the row's constant log-sum,
// so both draw the same token but for rounding.

struct Stats {
    float max;
    float sum;   // of exp(logit - max)
    float sum_t; // of exp((logit - max) / t)
};

__device__ __forceinline__ Stats join_stats(Stats a, Stats b, float inv_t) {
    if (b.max == -INFINITY) return a;
    if (a.max == -INFINITY) return b;
    const float m = fmaxf(a.max, b.max);
    Stats r;
    r.max = m;
    r.sum = a.sum * expf(a.max - m) + b.sum * expf(b.max - m);
    r.sum_t = a.sum_t * expf((a.max - m) * inv_t) + b.sum_t * expf((b.max - m) * inv_t);
    return r;
}

__device__ __forceinline__ Stats warp_join_stats(Stats x, float inv_t) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        Stats o;
        o.max = __shfl_xor_sync(0xffffffffu, x.max, offset);
        o.sum = __shfl_xor_sync(0xffffffffu, x.sum, offset);
        o.sum_t = __shfl_xor_sync(0xffffffffu, x.sum_t, offset);
        x = join_stats(x, o, inv_t);
    }
    return x;
}

struct Pick {
    float score;
    int index;
};

__device__ __forceinline__ Pick join_pick(Pick a, Pick b) {
    return (b.score > a.score || (b.score == a.score && b.index < a.index)) ? b : a;
}

__device__ __forceinline__ Pick warp_join_pick(Pick x) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        Pick o;
        o.score = __shfl_xor_sync(0xffffffffu, x.score, offset);
        o.index = __shfl_xor_sync(0xffffffffu, x.index, offset);
        x = join_pick(x, o);
    }
    return x;
}

template <typename T>
__device__ void sample_stats(const T* logits, int64_t stride, int vocab, float inv_t,
                             float* partial) {
    const int block = blockIdx.x, blocks = gridDim.x;
    const int64_t row = blockIdx.y;
    const int slice = (vocab + blocks - 1) / blocks;
    const int begin = block * slice, end = min(vocab, begin + slice);
    Stats s{-INFINITY, 0.0f, 0.0f};
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const float x = to_float(logits[row * stride + i]);
        s = join_stats(s, Stats{x, 1.0f, 1.0f}, inv_t);
    }
    s = warp_join_stats(s, inv_t);
    __shared__ Stats warps[32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) warps[warp] = s;
    __syncthreads();
    if (warp == 0) {
        Stats b = lane < blockDim.x / 32 ? warps[lane] : Stats{-INFINITY, 0.0f, 0.0f};
        b = warp_join_stats(b, inv_t);
        if (lane == 0) {
            float* out = partial + (row * blocks + block) * 3;
            out[0] = b.max;
            out[1] = b.sum;
            out[2] = b.sum_t;
        }
    }
}

template <typename T>
__device__ void sample_choose(const T* logits, int64_t stride, int vocab, const float* partial,
                              float inv_t, float log_min_p, const float* noise, float* choice) {
    const int block = blockIdx.x, blocks = gridDim.x;
    const int64_t row = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    // The row's largest logit, from every slice's.
    __shared__ float maxes[32];
    float m = -INFINITY;
    for (int i = threadIdx.x; i < blocks; i += blockDim.x) m = fmaxf(m, partial[(row * blocks + i) * 3]);
    for (int offset = 16; offset > 0; offset >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
    if (lane == 0) maxes[warp] = m;
    __syncthreads();
    m = -INFINITY;
    for (int w = 0; w < (int)blockDim.x / 32; ++w) m = fmaxf(m, maxes[w]);
    const int slice = (vocab + blocks - 1) / blocks;
    const int begin = block * slice, end = min(vocab, begin + slice);
    Pick best{-INFINITY, vocab};
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const float z = (to_float(logits[row * stride + i]) - m) * inv_t;
        if (z >= log_min_p) {
            const float g = -logf(-logf(noise[row * vocab + i]));
            best = join_pick(best, Pick{z + g, i});
        }
    }
    best = warp_join_pick(best);
    __shared__ Pick warps[32];
    if (lane == 0) warps[warp] = best;
    __syncthreads();
    if (warp == 0) {
        Pick b = lane < blockDim.x / 32 ? warps[lane] : Pick{-INFINITY, vocab};
        b = warp_join_pick(b);
        if (lane == 0) {
            float* out = choice + (row * blocks + block) * 2;
            out[0] = b.score;
            out[1] = __int_as_float(b.index);
        }
    }
}

template <typename T>
__device__ void sample_finish(const T* logits, int64_t stride, const float* partial,
                              const float* choice, int blocks, int rows, float inv_t, int tempered,
                              float* out) {
    const int64_t row = blockIdx.x;
    Stats s{-INFINITY, 0.0f, 0.0f};
    Pick best{-INFINITY, 0x7fffffff};
    for (int i = threadIdx.x; i < blocks; i += 32) {
        const float* p = partial + (row * blocks + i) * 3;
        s = join_stats(s, Stats{p[0], p[1], p[2]}, inv_t);
        const float* c = choice + (row * blocks + i) * 2;
        best = join_pick(best, Pick{c[0], __float_as_int(c[1])});
    }
    s = warp_join_stats(s, inv_t);
    best = warp_join_pick(best);
    if (threadIdx.x == 0) {
        const float x = to_float(logits[row * stride + best.index]);
        out[row] = (float)best.index;
        out[rows + row] = tempered ? (x - s.max) * inv_t - logf(s.sum_t) : (x - s.max) - logf(s.sum);
    }
}

#define SAMPLE(T, SUFFIX)                                                                          \
    extern "C" __global__ void sample_stats_##SUFFIX(const T* logits, int64_t stride, int vocab,  \
                                                     float inv_t, float* partial) {               \
        sample_stats<T>(logits, stride, vocab, inv_t, partial);                                    \
    }                                                                                              \
    extern "C" __global__ void sample_choose_##SUFFIX(const T* logits, int64_t stride, int vocab, \
                                                      const float* partial, float inv_t,          \
                                                      float log_min_p, const float* noise,        \
                                                      float* choice) {                            \
        sample_choose<T>(logits, stride, vocab, partial, inv_t, log_min_p, noise, choice);         \
    }                                                                                              \
    extern "C" __global__ void sample_finish_##SUFFIX(const T* logits, int64_t stride,            \
                                                      const float* partial, const float* choice,  \
                                                      int blocks, int rows, float inv_t,          \
                                                      int tempered, float* out) {                 \
        sample_finish<T>(logits, stride, partial, choice, blocks, rows, inv_t, tempered, out);     \
    }

SAMPLE(float, f32)
SAMPLE(__nv_bfloat16, bf16)
