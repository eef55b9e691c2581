// The start of a full-attention layer's decoding step in one kernel (lamar's own; the math of
// `FullAttention::forward` in `src/qwen35/model.rs` for one new token per row): per row and head,
//   query heads:     RMSNorm (zero-centred, float scale) of the query half of q_proj's output,
//                    rounded, then partial RoPE -> q (B, heads, 1, hd)
//   key/value heads: the same for the key -> written into the key buffer at column `column`;
//                    the value copied into the value buffer at the same column
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
                                          int64_t column, float eps) {
    extern __shared__ float normed[];
    const int head = blockIdx.x;
    const int64_t row = blockIdx.y;
    const int j = threadIdx.x;
    const bool is_query = head < heads;
    const int kv = head - heads;
    const T* src = is_query ? qg + row * qg_stride + (int64_t)head * 2 * hd
                            : k_in + row * k_stride + (int64_t)kv * hd;
    const float* scale = is_query ? q_scale : k_scale;
    const float x = j < hd ? to_float(src[j]) : 0.0f;
    const float inv = rsqrtf(block_sum(x * x) / hd + eps);
    if (j < hd) normed[j] = rounded<T>(x * inv * scale[j]);
    __syncthreads();
    if (j >= hd) return;
    float y = normed[j];
    if (j < rotary) {
        const int half = rotary / 2;
        const float angle = positions[row] * inv_freq[j % half];
        const float c = rounded<T>(cosf(angle)), s = rounded<T>(sinf(angle));
        const float turned = j < half ? -normed[j + half] : normed[j - half];
        y = rounded<T>(rounded<T>(normed[j] * c) + rounded<T>(turned * s));
    }
    if (is_query) {
        q_out[(row * heads + head) * hd + j] = from_float<T>(y);
    } else {
        const int64_t at = ((row * kv_heads + kv) * capacity + column) * hd + j;
        k_cache[at] = from_float<T>(y);
        v_cache[at] = v_in[row * v_stride + (int64_t)kv * hd + j];
    }
}

#define ATTENTION_KERNELS(SUFFIX, T)                                                              \
    extern "C" __global__ void attention_decode_prologue_##SUFFIX(                                \
        const T* qg, int64_t qg_stride, const T* k_in, int64_t k_stride, const T* v_in,           \
        int64_t v_stride, const float* q_scale, const float* k_scale, const float* positions,    \
        const float* inv_freq, T* q_out, T* k_cache, T* v_cache, int heads, int kv_heads, int hd, \
        int rotary, int64_t capacity, int64_t column, float eps) {                                \
        attention_decode_prologue<T>(qg, qg_stride, k_in, k_stride, v_in, v_stride, q_scale,     \
                                     k_scale, positions, inv_freq, q_out, k_cache, v_cache,      \
                                     heads, kv_heads, hd, rotary, capacity, column, eps);        \
    }

ATTENTION_KERNELS(f32, float)
ATTENTION_KERNELS(bf16, __nv_bfloat16)
