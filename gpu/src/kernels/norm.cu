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

// The backward of `out = x / sqrt(mean(x^2) + eps) * scale` over rows of `cols` (float; the
// training path's `train::ops::rms_norm`), with r = 1 / sqrt(mean(x^2) + eps) per row and
// gs = grad * scale:
//   dx = r gs - x r^3 mean(gs x)          d_scale = sum over rows of grad x r
// Each block takes `rows_per_block` rows (one at a time, both row sums in one reduction) and
// writes its share of d_scale to partial[block][cols] (summed over blocks by the caller); a
// thread owns columns threadIdx.x + k blockDim.x, so its share of d_scale needs no atomics.
// Dynamic shared memory: cols floats.
__device__ __forceinline__ float2 block_sum2(float2 v) {
    __shared__ float2 partial2[32];
    __shared__ float2 total2;
    v.x = warp_sum(v.x);
    v.y = warp_sum(v.y);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    if (lane == 0) partial2[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float2 w = lane < warps ? partial2[lane] : make_float2(0.0f, 0.0f);
        w.x = warp_sum(w.x);
        w.y = warp_sum(w.y);
        if (lane == 0) total2 = w;
    }
    __syncthreads();
    return total2;
}

extern "C" __global__ void rms_norm_backward_f32(const float* __restrict__ x,
                                                 const float* __restrict__ grad,
                                                 const float* __restrict__ scale,
                                                 float* __restrict__ dx,
                                                 float* __restrict__ partial, int64_t rows,
                                                 int cols, int rows_per_block, float eps) {
    extern __shared__ float d_scale[];
    for (int j = threadIdx.x; j < cols; j += blockDim.x) d_scale[j] = 0.0f;
    const int64_t first = (int64_t)blockIdx.x * rows_per_block;
    const int64_t last = min(first + rows_per_block, rows);
    for (int64_t row = first; row < last; ++row) {
        const float* xr = x + row * cols;
        const float* gr = grad + row * cols;
        float2 sums = make_float2(0.0f, 0.0f);
        for (int j = threadIdx.x; j < cols; j += blockDim.x) {
            const float xv = xr[j];
            sums.x += xv * xv;
            sums.y += gr[j] * scale[j] * xv;
        }
        sums = block_sum2(sums);
        const float r = rsqrtf(sums.x / cols + eps);
        const float k = (sums.y / cols) * r * r * r;
        for (int j = threadIdx.x; j < cols; j += blockDim.x) {
            const float xv = xr[j], g = gr[j];
            dx[row * cols + j] = r * g * scale[j] - xv * k;
            d_scale[j] += g * xv * r;
        }
    }
    for (int j = threadIdx.x; j < cols; j += blockDim.x)
        partial[(int64_t)blockIdx.x * cols + j] = d_scale[j];
}
