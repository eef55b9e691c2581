// An unmerged LoRA adapter's delta added to a projection of a few rows (a decoding step's batch):
// out[r, n] = round(y[r, n] + round(s * sum_j low[r, j] * b[n, j])), low[r, j] = sum_k x[r, k] *
// a[j, k], where y = x w^T is the base projection (in T), a (rank, K) and b (N, rank) are the
// adapter's f32 matrices and s its scale. It is what the candle operations of
// `TrainableLora::delta` and the addition compute (x to f32, two products, the scale, rounded to
// T, added in T), in one launch instead of six, so that GRPO's rollouts decode through CUDA graphs
// with the policy's adapter applied.
//
// Every block first computes all of `low` (rows * rank dot products over K: one warp per product,
// lanes striding K so that loads coalesce), which is cheap next to a launch for the ranks GRPO uses
// (2) and is recomputed by each block rather than passed through memory by a second kernel; then
// each thread finishes one output column for every row. The launcher bounds rows * rank by
// LOW_MAX.

#include "common.cuh"

constexpr int LOW_MAX = 512;
constexpr int THREADS = 256;

template <typename T>
__device__ void lora_add(const T* x, int64_t x_stride, const T* y, int64_t y_stride,
                         const float* a, const float* b, T* out, int rows, int rank, int n_total,
                         int k_total, float scale) {
    __shared__ float low[LOW_MAX];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int p = warp; p < rows * rank; p += THREADS / 32) {
        const int r = p / rank, j = p % rank;
        const T* xr = x + r * x_stride;
        const float* aj = a + (int64_t)j * k_total;
        float acc = 0.0f;
        for (int k = lane; k < k_total; k += 32) acc += to_float(xr[k]) * aj[k];
        acc = warp_sum(acc);
        if (lane == 0) low[p] = acc;
    }
    __syncthreads();
    const int n = blockIdx.x * THREADS + threadIdx.x;
    if (n >= n_total) return;
    const float* bn = b + (int64_t)n * rank;
    for (int r = 0; r < rows; ++r) {
        float d = 0.0f;
        for (int j = 0; j < rank; ++j) d += low[r * rank + j] * bn[j];
        const float delta = rounded<T>(scale * d);
        out[(int64_t)r * n_total + n] = from_float<T>(to_float(y[r * y_stride + n]) + delta);
    }
}

#define LORA_ADD(T, SUFFIX)                                                                      \
    extern "C" __global__ void lora_add_##SUFFIX(const T* x, int64_t x_stride, const T* y,      \
                                                 int64_t y_stride, const float* a,               \
                                                 const float* b, T* out, int rows, int rank,     \
                                                 int n_total, int k_total, float scale) {        \
        lora_add<T>(x, x_stride, y, y_stride, a, b, out, rows, rank, n_total, k_total, scale);   \
    }

LORA_ADD(float, f32)
LORA_ADD(__nv_bfloat16, bf16)
