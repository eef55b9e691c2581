// The residual stream's "add, then zero-centred RMSNorm" in one kernel (lamar's own; the math of
// `CenteredRmsNorm` and the residual additions in `src/qwen35/model.rs`):
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

#define NORM_KERNELS(SUFFIX, T)                                                                   \
    extern "C" __global__ void add_rms_norm_##SUFFIX(T* residual, const T* delta,                 \
                                                     const float* scale, T* out, int cols,        \
                                                     float eps) {                                 \
        add_rms_norm<T>(residual, delta, scale, out, cols, eps);                                  \
    }

NORM_KERNELS(f32, float)
NORM_KERNELS(bf16, __nv_bfloat16)
