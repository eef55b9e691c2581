// Matrix-vector products for decoding (lamar's own): y[r, n] = sum_k x[r, k] * w[n, k] for a few
// rows r (R <= 8), the weight `w` (N, K) row-major as stored. Decoding reads every weight once
// per step, so this is bound by memory bandwidth: each warp streams one weight row with 16-byte
// loads (8 values per lane per pass), the rows of `x` come from cache, sums are float and the
// result is rounded to T once, as cuBLAS rounds. Block (32, 4); K % 8 == 0 and 16-byte aligned
// rows (checked by the launcher).

#include "common.cuh"

template <typename T> struct Pack;  // 8 values of T in 16 or 32 bytes
template <> struct Pack<__nv_bfloat16> {
    uint4 raw;
    __device__ __forceinline__ void load(const __nv_bfloat16* p) { raw = *reinterpret_cast<const uint4*>(p); }
    __device__ __forceinline__ float at(int i) const {
        const __nv_bfloat16* v = reinterpret_cast<const __nv_bfloat16*>(&raw);
        return __bfloat162float(v[i]);
    }
};
template <> struct Pack<float> {
    float4 lo, hi;
    __device__ __forceinline__ void load(const float* p) {
        lo = *reinterpret_cast<const float4*>(p);
        hi = *reinterpret_cast<const float4*>(p + 4);
    }
    __device__ __forceinline__ float at(int i) const {
        const float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
        return v[i];
    }
};

// SPLIT false: warp w of block b computes column n = 4b + w over all of K.
// SPLIT true (for narrow outputs, so that more warps stream at once): the block's four warps
// share one column n = b, each a quarter of K, and add up in shared memory.
template <typename T, int R, bool SPLIT>
__device__ void gemv(const T* x, int64_t x_stride, const T* w, T* y, int64_t y_stride, int n_total,
                     int k_total) {
    const int lane = threadIdx.x, warp = threadIdx.y;
    const int n = SPLIT ? blockIdx.x : blockIdx.x * blockDim.y + warp;
    if (n >= n_total) return;
    const T* row = w + (int64_t)n * k_total;
    const int first = SPLIT ? (warp * 32 + lane) * 8 : lane * 8;
    const int step = SPLIT ? 4 * 32 * 8 : 32 * 8;
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0.0f;
#pragma unroll 4
    for (int k = first; k < k_total; k += step) {
        Pack<T> wv;
        wv.load(row + k);
#pragma unroll
        for (int r = 0; r < R; ++r) {
            Pack<T> xv;
            xv.load(x + r * x_stride + k);
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[r] += xv.at(i) * wv.at(i);
        }
    }
    __shared__ float partial[4][R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const float total = warp_sum(acc[r]);
        if (!SPLIT) {
            if (lane == 0) y[r * y_stride + n] = from_float<T>(total);
        } else if (lane == 0) {
            partial[warp][r] = total;
        }
    }
    if (SPLIT) {
        __syncthreads();
        if (warp == 0 && lane < R) {
            const float total = partial[0][lane] + partial[1][lane] + partial[2][lane] + partial[3][lane];
            y[lane * y_stride + n] = from_float<T>(total);
        }
    }
}

#define GEMV_KERNEL(SUFFIX, T, R)                                                                 \
    extern "C" __global__ void __launch_bounds__(128) gemv##R##_##SUFFIX(                         \
        const T* x, int64_t x_stride, const T* w, T* y, int64_t y_stride, int n_total,            \
        int k_total) {                                                                            \
        gemv<T, R, false>(x, x_stride, w, y, y_stride, n_total, k_total);                         \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(128) gemv##R##s_##SUFFIX(                        \
        const T* x, int64_t x_stride, const T* w, T* y, int64_t y_stride, int n_total,            \
        int k_total) {                                                                            \
        gemv<T, R, true>(x, x_stride, w, y, y_stride, n_total, k_total);                          \
    }

#define GEMV_KERNELS(SUFFIX, T)                                                                   \
    GEMV_KERNEL(SUFFIX, T, 1)                                                                     \
    GEMV_KERNEL(SUFFIX, T, 2)                                                                     \
    GEMV_KERNEL(SUFFIX, T, 3)                                                                     \
    GEMV_KERNEL(SUFFIX, T, 4)                                                                     \
    GEMV_KERNEL(SUFFIX, T, 5)                                                                     \
    GEMV_KERNEL(SUFFIX, T, 6)                                                                     \
    GEMV_KERNEL(SUFFIX, T, 7)                                                                     \
    GEMV_KERNEL(SUFFIX, T, 8)

GEMV_KERNELS(f32, float)
GEMV_KERNELS(bf16, __nv_bfloat16)
