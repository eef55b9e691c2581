// The chunked gated delta rule's two sequential passes (`deltanet_chunks.cu`: the forward pass
// over chunks and its adjoint) on tensor cores, written for lamar. The same recurrences, per
// chunk n with S the state (dk x dv):
//
//   forward:  V' = U_n - W_n S,   O_n = Q_n S + A_n V',   S <- d_n S + K_n V'
//   adjoint:  dV' = A_n^T dO_n + K_n^T dS,   dS <- Q_n^T dO_n + d_n dS - W_n^T dV'
//
// Every product is a 16 x 16 x 8 TF32 `mma` (nvcuda::wmma) in three parts ("3xTF32"): each
// float factor splits into a TF32 high part and the TF32 rounding of the rest, and
// a b ~ a_lo b_hi + a_hi b_lo + a_hi b_hi keeps about float's precision (the lost a_lo b_lo is
// 2^-22 of the product), so the results agree with the CUDA-core kernels and the candle
// operations to rounding, at tensor-core speed. Sums are float.
//
// One block per (sequence-head, 32 value columns) as before, 8 warps; the state's slice and
// the chunk's W, Q, K, A (and dO) live in shared memory, copied in with cp.async while the
// previous chunk finishes, each row padded by 4 floats so that the fragments' loads spread over
// the banks. Warp w makes output tile (w / 2, w % 2) of the (C x 32) products and tiles w and
// w + 8 of the (dk x 32) state update.
//
// Block (32, 8); C % 16 == 0, C <= 64, dk % 16 == 0, dk <= 128, dv % 32 == 0; U, O, V', dV' and
// the state tape 32-byte aligned (checked by the launcher). Dynamic shared memory, floats:
// forward (dk + C) * 36 + 2 * C * (dk + 4) + (dk + C) * (C + 4); adjoint C * 36 more.

#include <mma.h>
#include "async_copy.cuh"

using namespace nvcuda;

namespace {

constexpr int COLS = 32;        // value columns per block
constexpr int PAD = 4;          // floats added to every shared row
constexpr int LS = COLS + PAD;  // row stride of the (· x 32) slices

using RowA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using ColA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major>;
using RowB = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using Acc = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

// A loaded fragment (times `sign`) split in place into its TF32 high part, and `low`, the TF32
// rounding of what is left.
template <typename F>
__device__ __forceinline__ void split(F& high, F& low, float sign) {
#pragma unroll
    for (int t = 0; t < high.num_elements; ++t) {
        const float v = sign * high.x[t];
        const float h = wmma::__float_to_tf32(v);
        high.x[t] = h;
        low.x[t] = wmma::__float_to_tf32(v - h);
    }
}

// acc += a b from split factors, the small products first.
template <typename A>
__device__ __forceinline__ void mma3(Acc& acc, const A& a_hi, const A& a_lo, const RowB& b_hi,
                                     const RowB& b_lo) {
    wmma::mma_sync(acc, a_lo, b_hi, acc);
    wmma::mma_sync(acc, a_hi, b_lo, acc);
    wmma::mma_sync(acc, a_hi, b_hi, acc);
}

// The (· x 32) slice's B fragment at row `row`, column tile `ct`, split.
__device__ __forceinline__ void load_b(RowB& hi, RowB& lo, const float* slice, int row, int ct) {
    wmma::load_matrix_sync(hi, slice + row * LS + ct * 16, LS);
    split(hi, lo, 1.0f);
}

// acc += sign * a b, a the A fragment of layout `A` at `pa` (leading dimension `la`), b the
// slice's fragment at (row, ct).
template <typename A>
__device__ __forceinline__ void mma_from(Acc& acc, const float* pa, int la, float sign,
                                         const float* slice, int row, int ct) {
    A a_hi, a_lo;
    wmma::load_matrix_sync(a_hi, pa, la);
    split(a_hi, a_lo, sign);
    RowB b_hi, b_lo;
    load_b(b_hi, b_lo, slice, row, ct);
    mma3(acc, a_hi, a_lo, b_hi, b_lo);
}

// Tile `tile` of a (rows x 32) slice: acc = d * slice, then stored back by the caller.
__device__ __forceinline__ void load_scaled(Acc& acc, const float* slice, int tile, float d) {
    wmma::load_matrix_sync(acc, slice + (tile >> 1) * 16 * LS + (tile & 1) * 16, LS,
                           wmma::mem_row_major);
#pragma unroll
    for (int t = 0; t < acc.num_elements; ++t) acc.x[t] *= d;
}

__device__ __forceinline__ void store_tile(float* slice, int tile, const Acc& acc) {
    wmma::store_matrix_sync(slice + (tile >> 1) * 16 * LS + (tile & 1) * 16, acc, LS,
                            wmma::mem_row_major);
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256) deltanet_chunks_tc_f32(
    const float* __restrict__ u,      // (BH, N, C, dv)
    const float* __restrict__ w,      // (BH, N, C, dk)
    const float* __restrict__ q,      // (BH, N, C, dk)
    const float* __restrict__ a,      // (BH, N, C, C), zero above the diagonal
    const float* __restrict__ kc,     // (BH, N, dk, C)
    const float* __restrict__ decay,  // (BH, N)
    float* __restrict__ state,        // (BH, dk, dv), read, then overwritten with the last state
    float* __restrict__ out,          // (BH, N, C, dv)
    float* __restrict__ states,       // (BH, N, dk, dv): S entering each chunk; may be null
    float* __restrict__ fresh_out,    // (BH, N, C, dv): V'; may be null
    int chunks, int c_len, int dk, int dv) {
    extern __shared__ __align__(128) float4 shared4[];  // wmma wants 32-byte aligned tiles
    const int lk = dk + PAD, lc = c_len + PAD;
    float* s = reinterpret_cast<float*>(shared4);  // dk x LS: this block's columns of S
    float* fresh = s + dk * LS;                    // C x LS: V'
    float* tw = fresh + c_len * LS;                // C x lk
    float* tq = tw + c_len * lk;                   // C x lk
    float* tk = tq + c_len * lk;                   // dk x lc
    float* ta = tk + dk * lc;                      // C x lc
    const int lane = threadIdx.x, warp = threadIdx.y, thread = warp * 32 + lane;
    const int64_t bh = blockIdx.y;
    const int col0 = blockIdx.x * COLS;
    float* st = state + bh * dk * dv + col0;
    for (int d = warp; d < dk; d += 8) s[d * LS + lane] = st[(int64_t)d * dv + lane];
    const int64_t first = bh * chunks;
    stage_tile(tw, lk, w + first * c_len * dk, dk, c_len, dk, thread);
    stage_tile(tq, lk, q + first * c_len * dk, dk, c_len, dk, thread);
    stage_tile(tk, lc, kc + first * dk * c_len, c_len, dk, c_len, thread);
    stage_tile(ta, lc, a + first * c_len * c_len, c_len, c_len, c_len, thread);
    commit_copies();
    // This warp's tile of the (C x 32) products, if C leaves it one.
    const int rt = warp >> 1, ct = warp & 1;
    const bool mine = rt < c_len / 16;
    const int state_tiles = (dk / 16) * 2;
    for (int n = 0; n < chunks; ++n) {
        const int64_t chunk = bh * chunks + n;
        const int64_t rows = chunk * c_len + rt * 16;  // this warp's first row of U, O, V'
        wait_copies();
        __syncthreads();
        if (states != nullptr) {
            float* at = states + (chunk * dk) * dv + col0;
            for (int d = warp; d < dk; d += 8) at[(int64_t)d * dv + lane] = s[d * LS + lane];
        }
        // V' = U - W S and the first half of O, Q S.
        Acc acc_v, acc_o;
        if (mine) {
            wmma::load_matrix_sync(acc_v, u + rows * dv + col0 + ct * 16, dv, wmma::mem_row_major);
            wmma::fill_fragment(acc_o, 0.0f);
            for (int d = 0; d < dk; d += 8) {
                RowB b_hi, b_lo;
                load_b(b_hi, b_lo, s, d, ct);
                RowA x_hi, x_lo;
                wmma::load_matrix_sync(x_hi, tw + rt * 16 * lk + d, lk);
                split(x_hi, x_lo, -1.0f);
                mma3(acc_v, x_hi, x_lo, b_hi, b_lo);
                wmma::load_matrix_sync(x_hi, tq + rt * 16 * lk + d, lk);
                split(x_hi, x_lo, 1.0f);
                mma3(acc_o, x_hi, x_lo, b_hi, b_lo);
            }
            store_tile(fresh, warp, acc_v);
            if (fresh_out != nullptr)
                wmma::store_matrix_sync(fresh_out + rows * dv + col0 + ct * 16, acc_v, dv,
                                        wmma::mem_row_major);
        }
        __syncthreads();
        if (n + 1 < chunks) {
            stage_tile(tw, lk, w + (chunk + 1) * c_len * dk, dk, c_len, dk, thread);
            stage_tile(tq, lk, q + (chunk + 1) * c_len * dk, dk, c_len, dk, thread);
            commit_copies();
        }
        // O += A V' (A is zero above the diagonal: column blocks past this row tile add nothing).
        if (mine) {
            for (int j = 0; j < (rt + 1) * 16; j += 8)
                mma_from<RowA>(acc_o, ta + rt * 16 * lc + j, lc, 1.0f, fresh, j, ct);
            wmma::store_matrix_sync(out + rows * dv + col0 + ct * 16, acc_o, dv,
                                    wmma::mem_row_major);
        }
        // S <- d S + K V' (each warp reads and writes only its own tiles of S).
        const float dn = decay[chunk];
        for (int tile = warp; tile < state_tiles; tile += 8) {
            Acc acc;
            load_scaled(acc, s, tile, dn);
            for (int j = 0; j < c_len; j += 8)
                mma_from<RowA>(acc, tk + (tile >> 1) * 16 * lc + j, lc, 1.0f, fresh, j, tile & 1);
            store_tile(s, tile, acc);
        }
        __syncthreads();
        if (n + 1 < chunks) {
            stage_tile(tk, lc, kc + (chunk + 1) * dk * c_len, c_len, dk, c_len, thread);
            stage_tile(ta, lc, a + (chunk + 1) * c_len * c_len, c_len, c_len, c_len, thread);
            commit_copies();
        }
    }
    for (int d = warp; d < dk; d += 8) st[(int64_t)d * dv + lane] = s[d * LS + lane];
}

extern "C" __global__ void __launch_bounds__(256) deltanet_chunks_tc_backward_f32(
    const float* __restrict__ w,       // (BH, N, C, dk)
    const float* __restrict__ q,       // (BH, N, C, dk)
    const float* __restrict__ a,       // (BH, N, C, C), zero above the diagonal
    const float* __restrict__ kc,      // (BH, N, dk, C)
    const float* __restrict__ decay,   // (BH, N)
    const float* __restrict__ d_out,   // (BH, N, C, dv)
    const float* __restrict__ d_last,  // (BH, dk, dv): the final state's gradient; may be null
    float* __restrict__ d_fresh,       // (BH, N, C, dv): dV'
    float* __restrict__ d_after,       // (BH, N, dk, dv): dS after each chunk
    int chunks, int c_len, int dk, int dv) {
    extern __shared__ __align__(128) float4 shared4[];  // wmma wants 32-byte aligned tiles
    const int lk = dk + PAD, lc = c_len + PAD;
    float* ds = reinterpret_cast<float*>(shared4);  // dk x LS: this block's columns of dS
    float* dfresh = ds + dk * LS;                   // C x LS: dV'
    float* dout = dfresh + c_len * LS;              // C x LS: dO
    float* tw = dout + c_len * LS;                  // C x lk
    float* tq = tw + c_len * lk;                    // C x lk
    float* tk = tq + c_len * lk;                    // dk x lc
    float* ta = tk + dk * lc;                       // C x lc
    const int lane = threadIdx.x, warp = threadIdx.y, thread = warp * 32 + lane;
    const int64_t bh = blockIdx.y;
    const int col0 = blockIdx.x * COLS;
    for (int d = warp; d < dk; d += 8)
        ds[d * LS + lane] = d_last != nullptr ? d_last[(bh * dk + d) * dv + col0 + lane] : 0.0f;
    const int64_t last = bh * chunks + chunks - 1;
    stage_tile(tw, lk, w + last * c_len * dk, dk, c_len, dk, thread);
    stage_tile(tq, lk, q + last * c_len * dk, dk, c_len, dk, thread);
    stage_tile(tk, lc, kc + last * dk * c_len, c_len, dk, c_len, thread);
    stage_tile(ta, lc, a + last * c_len * c_len, c_len, c_len, c_len, thread);
    stage_tile(dout, LS, d_out + last * c_len * dv + col0, dv, c_len, COLS, thread);
    commit_copies();
    const int rt = warp >> 1, ct = warp & 1;
    const bool mine = rt < c_len / 16;
    const int state_tiles = (dk / 16) * 2;
    for (int n = chunks - 1; n >= 0; --n) {
        const int64_t chunk = bh * chunks + n;
        wait_copies();
        __syncthreads();
        {
            float* at = d_after + (chunk * dk) * dv + col0;
            for (int d = warp; d < dk; d += 8) at[(int64_t)d * dv + lane] = ds[d * LS + lane];
        }
        // dV' = A^T dO + K^T dS: A^T and K^T are A and K read column-major. A^T is zero below
        // the diagonal: its column blocks before this row tile add nothing.
        if (mine) {
            Acc acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int j = rt * 16; j < c_len; j += 8)
                mma_from<ColA>(acc, ta + j * lc + rt * 16, lc, 1.0f, dout, j, ct);
            for (int d = 0; d < dk; d += 8)
                mma_from<ColA>(acc, tk + d * lc + rt * 16, lc, 1.0f, ds, d, ct);
            store_tile(dfresh, warp, acc);
            wmma::store_matrix_sync(d_fresh + (chunk * c_len + rt * 16) * dv + col0 + ct * 16, acc,
                                    dv, wmma::mem_row_major);
        }
        __syncthreads();
        if (n > 0) {
            stage_tile(tk, lc, kc + (chunk - 1) * dk * c_len, c_len, dk, c_len, thread);
            stage_tile(ta, lc, a + (chunk - 1) * c_len * c_len, c_len, c_len, c_len, thread);
            commit_copies();
        }
        // dS <- d dS + Q^T dO - W^T dV' (Q^T, W^T: Q and W read column-major; each warp reads
        // and writes only its own tiles of dS).
        const float dn = decay[chunk];
        for (int tile = warp; tile < state_tiles; tile += 8) {
            const int r0 = (tile >> 1) * 16, c_tile = tile & 1;
            Acc acc;
            load_scaled(acc, ds, tile, dn);
            for (int c = 0; c < c_len; c += 8) {
                mma_from<ColA>(acc, tq + c * lk + r0, lk, 1.0f, dout, c, c_tile);
                mma_from<ColA>(acc, tw + c * lk + r0, lk, -1.0f, dfresh, c, c_tile);
            }
            store_tile(ds, tile, acc);
        }
        __syncthreads();
        if (n > 0) {
            stage_tile(tw, lk, w + (chunk - 1) * c_len * dk, dk, c_len, dk, thread);
            stage_tile(tq, lk, q + (chunk - 1) * c_len * dk, dk, c_len, dk, thread);
            stage_tile(dout, LS, d_out + (chunk - 1) * c_len * dv + col0, dv, c_len, COLS, thread);
            commit_copies();
        }
    }
}
