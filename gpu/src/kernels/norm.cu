// The residual stream's "add, then zero-centred RMSNorm" in one kernel (lamar's own; the math of
// `CenteredRmsNorm` and the residual additions in `src/qwen35/layers/{norm,mod}.rs`):
//   residual <- round(residual + delta)            (in place; skipped when delta is null)
//   out      <- round(residual / sqrt(mean(residual^2) + eps) * scale)
// with the sums and the product in float and `scale` (= 1 + weight) in float, as transformers
// computes Qwen3.5's RMSNorm. One block per row.

#include "common.cuh"

template <typename T>
__device__ void add_rms_norm(T* residual, const T* delta, const float* scale, T* out, int cols,
                             float eps) {
    const int64_t row = blockIdx.x;
    T* x = residual + row * cols;
    const T* d = delta == nullptr ? nullptr : delta + row * cols;
    float sq = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        float v = to_float(x[j]);
        if (d != nullptr) {
            v = rounded<T>(v + to_float(d[j]));
            x[j] = from_float<T>(v);
        }
        sq += v * v;
    }
    const float inv = rsqrtf(block_sum(sq) / cols + eps);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        out[row * cols + j] = from_float<T>(to_float(x[j]) * inv * scale[j]);
    }
}

// The same for rows of at most 8 * 1024 columns, a multiple of 8, 16-byte aligned: thread t
// holds columns [8t, 8t + 8) in registers, so each value is loaded once and every load is
// issued before the sum (one round trip to memory instead of two). Block: cols / 8 threads,
// rounded up to a multiple of 32.
template <typename T>
__device__ void add_rms_norm_packed(T* residual, const T* delta, const float* scale, T* out,
                                    int cols, float eps) {
    const int64_t at = blockIdx.x * (int64_t)cols + threadIdx.x * 8;
    const int c = threadIdx.x * 8;
    const bool live = c < cols;
    float v[8] = {};
    float sq = 0.0f;
    Pack<float> s;
    if (live) {
        s.load(scale + c);
        Pack<T> x;
        x.load(residual + at);
        if (delta != nullptr) {
            Pack<T> d;
            d.load(delta + at);
#pragma unroll
            for (int i = 0; i < 8; ++i) v[i] = rounded<T>(x.at(i) + d.at(i));
            store_pack(residual + at, v);
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i) v[i] = x.at(i);
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) sq += v[i] * v[i];
    }
    const float inv = rsqrtf(block_sum(sq) / cols + eps);
    if (live) {
        float normed[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) normed[i] = v[i] * inv * s.at(i);
        store_pack(out + at, normed);
    }
}

#define NORM_KERNELS(SUFFIX, T)                                                                   \
    extern "C" __global__ void add_rms_norm_##SUFFIX(T* residual, const T* delta,                 \
                                                     const float* scale, T* out, int cols,        \
                                                     float eps) {                                 \
        add_rms_norm<T>(residual, delta, scale, out, cols, eps);                                  \
    }                                                                                             \
    extern "C" __global__ void add_rms_norm_packed_##SUFFIX(T* residual, const T* delta,          \
                                                            const float* scale, T* out, int cols, \
                                                            float eps) {                          \
        add_rms_norm_packed<T>(residual, delta, scale, out, cols, eps);                           \
    }

NORM_KERNELS(f32, float)
NORM_KERNELS(bf16, __nv_bfloat16)
