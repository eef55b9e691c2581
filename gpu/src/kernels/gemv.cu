// Matrix-vector products for decoding (lamar's own): y[r, n] = sum_k x[r, k] * w[n, k] for a few
// rows r (R <= 8), the weight `w` (N, K) row-major as stored. Decoding reads every weight once
// per step, so this is bound by memory bandwidth: lanes stream weight rows with 16-byte loads
// (8 values per lane per pass), the rows of `x` come from cache, sums are float and the result is
// rounded to T once, as cuBLAS rounds. K % 8 == 0 and 16-byte aligned rows (checked by the
// launcher).
//
// The plan (S, M) shapes the work so that every warp streams the same number of bytes and, where
// the grid fits, all blocks are resident at once (a partly filled last wave of blocks leaves the
// memory system idle at the end): a group of S warps shares M neighbouring columns, each warp
// streaming all M rows over one S-th of K (its loads of M rows in flight together); a block of
// four warps holds 4 / S groups.

#include "common.cuh"

template <typename T, int R, int S, int M>
__device__ void gemv(const T* x, int64_t x_stride, const T* w, T* y, int64_t y_stride, int n_total,
                     int k_total) {
    constexpr int GROUPS = 4 / S;
    constexpr int UNROLL = M >= 3 ? 1 : 4 / M;
    const int lane = threadIdx.x, warp = threadIdx.y;
    const int part = warp % S;
    const int n0 = (blockIdx.x * GROUPS + warp / S) * M;
    const bool active = n0 < n_total;
    float acc[M][R];
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
        for (int r = 0; r < R; ++r) acc[m][r] = 0.0f;
    if (active) {
        const T* rows[M];
#pragma unroll
        for (int m = 0; m < M; ++m) rows[m] = w + (int64_t)min(n0 + m, n_total - 1) * k_total;
        const int first = (part * 32 + lane) * 8;
#pragma unroll UNROLL
        for (int k = first; k < k_total; k += S * 32 * 8) {
            Pack<T> wv[M];
#pragma unroll
            for (int m = 0; m < M; ++m) wv[m].load(rows[m] + k);
#pragma unroll
            for (int r = 0; r < R; ++r) {
                Pack<T> xv;
                xv.load(x + r * x_stride + k);
#pragma unroll
                for (int m = 0; m < M; ++m)
#pragma unroll
                    for (int i = 0; i < 8; ++i) acc[m][r] += xv.at(i) * wv[m].at(i);
            }
        }
    }
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
        for (int r = 0; r < R; ++r) acc[m][r] = warp_sum(acc[m][r]);
    if (S == 1) {
        if (active && lane == 0) {
#pragma unroll
            for (int m = 0; m < M; ++m)
                if (n0 + m < n_total)
#pragma unroll
                    for (int r = 0; r < R; ++r) y[r * y_stride + n0 + m] = from_float<T>(acc[m][r]);
        }
        return;
    }
    // S > 1: the group's warps add up their parts in shared memory (M * R <= 32 values).
    __shared__ float partial[4][M * R];
    if (lane == 0) {
#pragma unroll
        for (int m = 0; m < M; ++m)
#pragma unroll
            for (int r = 0; r < R; ++r) partial[warp][m * R + r] = acc[m][r];
    }
    __syncthreads();
    if (active && part == 0 && lane < M * R) {
        const int m = lane / R, r = lane % R;
        float total = 0.0f;
#pragma unroll
        for (int s = 0; s < S; ++s) total += partial[warp + s][lane];
        if (n0 + m < n_total) y[r * y_stride + n0 + m] = from_float<T>(total);
    }
}

#define GEMV_KERNEL(SUFFIX, T, R, S, M)                                                           \
    extern "C" __global__ void __launch_bounds__(128) gemv##R##_s##S##m##M##_##SUFFIX(            \
        const T* x, int64_t x_stride, const T* w, T* y, int64_t y_stride, int n_total,            \
        int k_total) {                                                                            \
        gemv<T, R, S, M>(x, x_stride, w, y, y_stride, n_total, k_total);                          \
    }

#define GEMV_PLANS(SUFFIX, T, R)                                                                  \
    GEMV_KERNEL(SUFFIX, T, R, 1, 1)                                                               \
    GEMV_KERNEL(SUFFIX, T, R, 2, 2)                                                               \
    GEMV_KERNEL(SUFFIX, T, R, 4, 1)                                                               \
    GEMV_KERNEL(SUFFIX, T, R, 4, 2)

#define GEMV_KERNELS(SUFFIX, T)                                                                   \
    GEMV_PLANS(SUFFIX, T, 1)                                                                      \
    GEMV_PLANS(SUFFIX, T, 2)                                                                      \
    GEMV_PLANS(SUFFIX, T, 3)                                                                      \
    GEMV_PLANS(SUFFIX, T, 4)                                                                      \
    GEMV_PLANS(SUFFIX, T, 5)                                                                      \
    GEMV_PLANS(SUFFIX, T, 6)                                                                      \
    GEMV_PLANS(SUFFIX, T, 7)                                                                      \
    GEMV_PLANS(SUFFIX, T, 8)

GEMV_KERNELS(f32, float)
GEMV_KERNELS(bf16, __nv_bfloat16)
