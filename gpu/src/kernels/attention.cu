// The start of a full-attention layer's decoding step in one kernel (lamar's own; the math of
// `FullAttention::forward` in `src/qwen35/layers/attention.rs` for one new token per row): per row and head,
//   query heads:     RMSNorm (zero-centred, float scale) of the query half of q_proj's output,
//                    rounded, then partial RoPE -> q (B, heads, 1, hd)
//   key/value heads: the same for the key -> written into the key buffer at column `column`
//                    (read from `column_on_device` when that is not null: a CUDA graph's
//                    replays); the value copied into the value buffer at the same column
// RoPE (rotate-half over the first `rotary` dims, angle = position * inv_freq[i mod rotary/2])
// rounds where the candle path does: cos and sin to T, each product, and their sum.
// Grid (heads + kv_heads, rows), head_dim threads (a multiple of 32).

#include "common.cuh"

template <typename T>
__device__ void attention_decode_prologue(const T* qg, int64_t qg_stride, const T* k_in,
                                          int64_t k_stride, const T* v_in, int64_t v_stride,
                                          const float* q_scale, const float* k_scale,
                                          const float* positions, const float* inv_freq,
                                          T* q_out, T* k_cache, T* v_cache, int heads,
                                          int kv_heads, int hd, int rotary, int64_t capacity,
                                          int64_t column, const unsigned int* column_on_device,
                                          float* bias, int64_t bias_stride, float eps) {
    extern __shared__ float normed[];
    const int head = blockIdx.x;
    const int64_t row = blockIdx.y;
    const int j = threadIdx.x;
    if (column_on_device != nullptr) column = *column_on_device;
    // The new token's own key is not padding: open its column of the bias (a graph's bias
    // buffer starts closed; an eager step's already has it open).
    if (bias != nullptr && head == 0 && j == 0) bias[row * bias_stride + column] = 0.0f;
    const bool is_query = head < heads;
    const int kv = head - heads;
    const T* src = is_query ? qg + row * qg_stride + (int64_t)head * 2 * hd
                            : k_in + row * k_stride + (int64_t)kv * hd;
    const float* scale = is_query ? q_scale : k_scale;
    // Every load this thread needs, issued before the sum.
    const float x = j < hd ? to_float(src[j]) : 0.0f;
    const float scale_j = j < hd ? scale[j] : 0.0f;
    const float position = positions[row];
    const float frequency = j < rotary ? inv_freq[j % (rotary / 2)] : 0.0f;
    const T value = !is_query && j < hd ? v_in[row * v_stride + (int64_t)kv * hd + j] : T();
    const float inv = rsqrtf(block_sum(x * x) / hd + eps);
    if (j < hd) normed[j] = rounded<T>(x * inv * scale_j);
    __syncthreads();
    if (j >= hd) return;
    float y = normed[j];
    if (j < rotary) {
        const int half = rotary / 2;
        const float angle = position * frequency;
        const float c = rounded<T>(cosf(angle)), s = rounded<T>(sinf(angle));
        const float turned = j < half ? -normed[j + half] : normed[j - half];
        y = rounded<T>(rounded<T>(normed[j] * c) + rounded<T>(turned * s));
    }
    if (is_query) {
        q_out[(row * heads + head) * hd + j] = from_float<T>(y);
    } else {
        const int64_t at = ((row * kv_heads + kv) * capacity + column) * hd + j;
        k_cache[at] = from_float<T>(y);
        v_cache[at] = value;
    }
}

#define ATTENTION_KERNELS(SUFFIX, T)                                                              \
    extern "C" __global__ void attention_decode_prologue_##SUFFIX(                                \
        const T* qg, int64_t qg_stride, const T* k_in, int64_t k_stride, const T* v_in,           \
        int64_t v_stride, const float* q_scale, const float* k_scale, const float* positions,    \
        const float* inv_freq, T* q_out, T* k_cache, T* v_cache, int heads, int kv_heads, int hd, \
        int rotary, int64_t capacity, int64_t column, const unsigned int* column_on_device,       \
        float* bias, int64_t bias_stride, float eps) {                                            \
        attention_decode_prologue<T>(qg, qg_stride, k_in, k_stride, v_in, v_stride, q_scale,     \
                                     k_scale, positions, inv_freq, q_out, k_cache, v_cache,      \
                                     heads, kv_heads, hd, rotary, capacity, column,              \
                                     column_on_device, bias, bias_stride, eps);                  \
    }

ATTENTION_KERNELS(f32, float)
ATTENTION_KERNELS(bf16, __nv_bfloat16)

// Attention of one new query token per row over the cached keys and values (flash decoding),
// for a group of `group` query heads sharing one key/value head. Two kernels:
//
//   attention_decode_split: grid (splits, kv_heads, rows), 4 warps. Each block takes keys
//     [split * chunk, min(length, (split + 1) * chunk)); warp w takes every 4th of them. Per
//     key: each lane dots 8 dimensions (head_dim = 256) of each query with the key, the warp
//     sums, the score is rounded as the candle path rounds (the product, then the scaled
//     product, to T) and the padding bias added; an online softmax (float) accumulates the
//     values. The block's maximum, sum and weighted values per query go to `partial`.
//   attention_decode_combine: grid (heads, rows), head_dim threads. Joins the splits and
//     multiplies by the output gate: out = round(round(attention) * round(sigmoid(gate))).
//
// The length comes from `length_on_device` when it is not null (a CUDA graph replays with a
// length it reads), else from `length`.

constexpr int DECODE_WARPS = 4;
constexpr int DECODE_DIMS_PER_LANE = 8;  // head_dim 256 = 32 lanes x 8
template <typename T, int GROUP>
__device__ void attention_decode_split(const T* q, const T* k_cache, const T* v_cache,
                                       const float* bias, int64_t bias_stride, float* partial,
                                       int heads, int kv_heads, int64_t capacity, int chunk,
                                       int length, const unsigned int* length_on_device,
                                       float scale) {
    constexpr int HD = 32 * DECODE_DIMS_PER_LANE;
    constexpr int group = GROUP;
    const int split = blockIdx.x, splits = gridDim.x;
    const int kv = blockIdx.y;
    const int64_t row = blockIdx.z;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int len = length_on_device != nullptr ? *length_on_device : length;
    const int begin = split * chunk;
    const int end = min(len, begin + chunk);

    float qr[GROUP][DECODE_DIMS_PER_LANE];
#pragma unroll
    for (int g = 0; g < group; ++g) {
        const T* qh = q + (row * heads + kv * group + g) * HD + lane * DECODE_DIMS_PER_LANE;
#pragma unroll
        for (int d = 0; d < DECODE_DIMS_PER_LANE; ++d) qr[g][d] = to_float(qh[d]);
    }
    float m[GROUP], l[GROUP], acc[GROUP][DECODE_DIMS_PER_LANE];
#pragma unroll
    for (int g = 0; g < GROUP; ++g) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
#pragma unroll
        for (int d = 0; d < DECODE_DIMS_PER_LANE; ++d) acc[g][d] = 0.0f;
    }
    const int64_t base = (row * kv_heads + kv) * capacity;
    // Each warp takes keys j = begin + warp + 4 i, KEYS_AT_ONCE at a time: their keys and
    // values are all requested before the first is used, so that one memory latency is paid
    // per group of keys instead of per key.
    constexpr int KEYS_AT_ONCE = 4;
    for (int j0 = begin + warp; j0 < end; j0 += KEYS_AT_ONCE * DECODE_WARPS) {
        Pack<T> kp[KEYS_AT_ONCE], vp[KEYS_AT_ONCE];
        float bs[KEYS_AT_ONCE];
#pragma unroll
        for (int u = 0; u < KEYS_AT_ONCE; ++u) {
            const int j = j0 + u * DECODE_WARPS;
            if (j < end) {
                kp[u].load(k_cache + (base + j) * HD + lane * DECODE_DIMS_PER_LANE);
                vp[u].load(v_cache + (base + j) * HD + lane * DECODE_DIMS_PER_LANE);
                bs[u] = bias[row * bias_stride + j];
            }
        }
#pragma unroll
        for (int u = 0; u < KEYS_AT_ONCE; ++u) {
            if (j0 + u * DECODE_WARPS >= end) break;
#pragma unroll
            for (int g = 0; g < group; ++g) {
                float dot = 0.0f;
#pragma unroll
                for (int d = 0; d < DECODE_DIMS_PER_LANE; ++d) dot += qr[g][d] * kp[u].at(d);
                dot = warp_sum(dot);
                const float s = rounded<T>(rounded<T>(dot) * scale) + bs[u];
                const float m_new = fmaxf(m[g], s);
                const float correction = expf(m[g] - m_new);
                const float p = expf(s - m_new);
                l[g] = l[g] * correction + p;
#pragma unroll
                for (int d = 0; d < DECODE_DIMS_PER_LANE; ++d)
                    acc[g][d] = acc[g][d] * correction + p * vp[u].at(d);
                m[g] = m_new;
            }
        }
    }
    // Join the warps: warp 0 collects through shared memory.
    __shared__ float sm[DECODE_WARPS][GROUP];
    __shared__ float sl[DECODE_WARPS][GROUP];
    __shared__ float sacc[DECODE_WARPS][GROUP][HD];
#pragma unroll
    for (int g = 0; g < group; ++g) {
        if (lane == 0) {
            sm[warp][g] = m[g];
            sl[warp][g] = l[g];
        }
#pragma unroll
        for (int d = 0; d < DECODE_DIMS_PER_LANE; ++d) sacc[warp][g][lane * DECODE_DIMS_PER_LANE + d] = acc[g][d];
    }
    __syncthreads();
    // partial layout per (row, kv, split, g): [m, l, acc(HD)].
    for (int idx = threadIdx.x; idx < group * HD; idx += blockDim.x) {
        const int g = idx / HD, d = idx % HD;
        float mm = -INFINITY;
        for (int w = 0; w < DECODE_WARPS; ++w) mm = fmaxf(mm, sm[w][g]);
        float ll = 0.0f, aa = 0.0f;
        for (int w = 0; w < DECODE_WARPS; ++w) {
            const float c = sm[w][g] == -INFINITY ? 0.0f : expf(sm[w][g] - mm);
            ll += sl[w][g] * c;
            aa += sacc[w][g][d] * c;
        }
        float* out = partial + (((row * kv_heads + kv) * splits + split) * group + g) * (HD + 2);
        if (d == 0) {
            out[0] = mm;
            out[1] = ll;
        }
        out[2 + d] = aa;
    }
}

template <typename T>
__device__ void attention_decode_combine(const float* partial, const T* gate, int64_t gate_stride,
                                         T* out, int heads, int kv_heads, int splits) {
    constexpr int HD = 32 * DECODE_DIMS_PER_LANE;
    const int head = blockIdx.x;
    const int64_t row = blockIdx.y;
    const int d = threadIdx.x;
    const int group = heads / kv_heads;
    const int kv = head / group, g = head % group;
    // Each split's maximum and sum are read once, by one thread each, into shared memory
    // (`splits` floats twice, dynamic); then every thread's loads of its dimension are
    // independent of each other.
    extern __shared__ float shared[];
    float* weight = shared;           // e^{m_s - max}
    float* sums = shared + splits;    // l_s e^{m_s - max}
    const float* first = partial + ((row * kv_heads + kv) * splits * group + g) * (HD + 2);
    const int64_t split_stride = (int64_t)group * (HD + 2);
    // The gate's load first: it is independent of the rest.
    const float gv = to_float(gate[row * gate_stride + (int64_t)head * 2 * HD + HD + d]);
    for (int s = d; s < splits; s += blockDim.x) weight[s] = first[s * split_stride];
    __syncthreads();
    float mm = -INFINITY;
    for (int s = 0; s < splits; ++s) mm = fmaxf(mm, weight[s]);
    __syncthreads();
    for (int s = d; s < splits; s += blockDim.x) {
        const float m = first[s * split_stride];
        const float c = m == -INFINITY ? 0.0f : expf(m - mm);
        weight[s] = c;
        sums[s] = first[s * split_stride + 1] * c;
    }
    __syncthreads();
    float ll = 0.0f, aa = 0.0f;
#pragma unroll 8
    for (int s = 0; s < splits; ++s) {
        ll += sums[s];
        aa += first[s * split_stride + 2 + d] * weight[s];
    }
    const float attention = rounded<T>(aa / ll);
    const float gated = rounded<T>(1.0f / (1.0f + expf(-gv)));
    out[(row * heads + head) * HD + d] = from_float<T>(attention * gated);
}

#define ATTENTION_DECODE_SPLIT(SUFFIX, T, GROUP)                                                  \
    extern "C" __global__ void __launch_bounds__(128) attention_decode_split##GROUP##_##SUFFIX(   \
        const T* q, const T* k_cache, const T* v_cache, const float* bias, int64_t bias_stride,  \
        float* partial, int heads, int kv_heads, int64_t capacity, int chunk, int length,         \
        const unsigned int* length_on_device, float scale) {                                               \
        attention_decode_split<T, GROUP>(q, k_cache, v_cache, bias, bias_stride, partial, heads, \
                                         kv_heads, capacity, chunk, length, length_on_device,     \
                                         scale);                                                  \
    }

#define ATTENTION_DECODE_KERNELS(SUFFIX, T)                                                       \
    ATTENTION_DECODE_SPLIT(SUFFIX, T, 1)                                                          \
    ATTENTION_DECODE_SPLIT(SUFFIX, T, 2)                                                          \
    ATTENTION_DECODE_SPLIT(SUFFIX, T, 4)                                                          \
    ATTENTION_DECODE_SPLIT(SUFFIX, T, 8)                                                          \
    extern "C" __global__ void attention_decode_combine_##SUFFIX(                                 \
        const float* partial, const T* gate, int64_t gate_stride, T* out, int heads,              \
        int kv_heads, int splits) {                                                               \
        attention_decode_combine<T>(partial, gate, gate_stride, out, heads, kv_heads, splits);    \
    }

ATTENTION_DECODE_KERNELS(f32, float)
ATTENTION_DECODE_KERNELS(bf16, __nv_bfloat16)
