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
//
// What the product's sums become (the epilogue), so that a decoding step's small follow-up
// kernels need no launch of their own:
//   PLAIN   y[r, n] = round(sum).
//   SWIGLU  the MLP's stacked gate/up projection (w is (2N, K): N gate rows, then N up rows)
//           and the result its activation, y[r, n] = round(round(silu(g)) * u) for
//           g = round(gate sum), u = round(up sum), as the separate `silu_mul` kernel (mlp.cu)
//           computes it from the rounded products: a group's M streams are M / 2 (gate, up)
//           row pairs, and the intermediate products never reach memory.

#include "common.cuh"

enum Epilogue { PLAIN, SWIGLU };

template <typename T, int R, int S, int M, Epilogue EPILOGUE>
__device__ void gemv(const T* x, int64_t x_stride, const T* w, T* y, int64_t y_stride, int n_total,
                     int k_total) {
    constexpr bool PAIRS = EPILOGUE == SWIGLU;
    static_assert(!PAIRS || M % 2 == 0, "SwiGLU streams (gate, up) row pairs");
    constexpr int GROUPS = 4 / S;
    constexpr int UNROLL = M >= 3 ? 1 : 4 / M;
    constexpr int OUTPUTS = PAIRS ? M / 2 : M;  // output columns per group
    const int lane = threadIdx.x, warp = threadIdx.y;
    const int part = warp % S;
    const int n0 = (blockIdx.x * GROUPS + warp / S) * OUTPUTS;
    const bool active = n0 < n_total;
    float acc[M][R];
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
        for (int r = 0; r < R; ++r) acc[m][r] = 0.0f;
    if (active) {
        const T* rows[M];
#pragma unroll
        for (int m = 0; m < M; ++m) {
            const int column = min(n0 + (PAIRS ? m / 2 : m), n_total - 1);
            const int64_t row = PAIRS ? column + (int64_t)(m % 2) * n_total : column;
            rows[m] = w + row * k_total;
        }
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
    // The group's sums for row r, one per stream, written as y's columns n0, n0 + 1, ...
    auto store = [&](const float* sums, int r) {
#pragma unroll
        for (int o = 0; o < OUTPUTS; ++o) {
            const int n = n0 + o;
            if (n >= n_total) continue;
            float value = sums[o];
            if (PAIRS) {
                const float gate = rounded<T>(sums[2 * o]), up = rounded<T>(sums[2 * o + 1]);
                value = rounded<T>(silu(gate)) * up;
            }
            y[r * y_stride + n] = from_float<T>(value);
        }
    };
    if (S == 1) {
        if (active && lane == 0) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
                float sums[M];
#pragma unroll
                for (int m = 0; m < M; ++m) sums[m] = acc[m][r];
                store(sums, r);
            }
        }
        return;
    }
    // S > 1: the group's warps add up their parts in shared memory (M * R <= 32 values); lane r
    // of the group's first warp finishes row r.
    __shared__ float partial[4][M * R];
    if (lane == 0) {
#pragma unroll
        for (int m = 0; m < M; ++m)
#pragma unroll
            for (int r = 0; r < R; ++r) partial[warp][m * R + r] = acc[m][r];
    }
    __syncthreads();
    if (active && part == 0 && lane < R) {
        float sums[M];
#pragma unroll
        for (int m = 0; m < M; ++m) {
            sums[m] = 0.0f;
#pragma unroll
            for (int s = 0; s < S; ++s) sums[m] += partial[warp + s][m * R + lane];
        }
        store(sums, lane);
    }
}

#define GEMV_KERNEL(NAME, T, R, S, M, EPILOGUE)                                                   \
    extern "C" __global__ void __launch_bounds__(128)                                             \
        NAME(const T* x, int64_t x_stride, const T* w, T* y, int64_t y_stride, int n_total,       \
             int k_total) {                                                                       \
        gemv<T, R, S, M, EPILOGUE>(x, x_stride, w, y, y_stride, n_total, k_total);              \
    }

// Every plan for R rows (the bench compares them); SwiGLU with the plan that
// `GemvPlan::for_shape` picks.
#define GEMV_PLANS(SUFFIX, T, R)                                                                  \
    GEMV_KERNEL(gemv##R##_s1m1_##SUFFIX, T, R, 1, 1, PLAIN)                                       \
    GEMV_KERNEL(gemv##R##_s2m2_##SUFFIX, T, R, 2, 2, PLAIN)                                       \
    GEMV_KERNEL(gemv##R##_s4m1_##SUFFIX, T, R, 4, 1, PLAIN)                                       \
    GEMV_KERNEL(gemv##R##_s4m2_##SUFFIX, T, R, 4, 2, PLAIN)                                       \
    GEMV_KERNEL(swiglu##R##_s4m2_##SUFFIX, T, R, 4, 2, SWIGLU)

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
