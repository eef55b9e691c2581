// The state-free part of the chunked gated delta rule for one chunk of Qwen3.5's sizes
// (dk = dv = 128, C = 64), shared by inference's prefill (`deltanet_chunks.cu`, from the
// convolution's output) and training (`deltanet_parts.cu`, from the normed queries and keys):
// once a block has the chunk's queries, keys, values, beta and log-decays g in shared memory,
// `chunk_products` makes, with G = cumsum(g) and tokens c of the chunk,
//
//   L_ij = beta_i (k_i . k_j) e^{G_i - G_j}  (j < i),   T = (I + L)^-1 (forward substitution)
//   U = T (beta v),  W = T (beta k e^G),  A_ij = (q_i . k_j) e^{G_i - G_j}  (j <= i)
//   Q = q e^G,  K^T_dc = k_cd e^{G_last - G_c},  d = e^{G_last}
//
// Tokens past the sequence's end count as zero inputs with beta = g = 0. Block 256 threads;
// dynamic shared memory PREP_SHARED floats. Thread (ti, tj) = (t / 16, t % 16) owns rows
// ti + 16 r and columns tj + 16 s of each product, so that rows of 129 floats in shared memory
// are read without bank conflicts.
#pragma once
#include "common.cuh"

#define PC 64      // tokens per chunk
#define PD 128     // key and value size
#define PS 129     // row stride of q, k, v in shared memory
#define PT 65      // row stride of L and T
#define PREP_SHARED (3 * PC * PS + 2 * PC * PT + 4 * PC)

// The chunk's tiles in shared memory (PREP_SHARED floats).
struct ChunkShared {
    float* qs;     // PC x PS: queries (normed and scaled)
    float* ks;     // PC x PS: keys (normed)
    float* vs;     // PC x PS: values
    float* ls;     // PC x PT: L
    float* ts;     // PC x PT: T = (I + L)^-1
    float* cum;    // PC: g, then G
    float* beta;   // PC
    float* grown;  // PC: e^G
    float* carry;  // PC: e^{G_last - G}
};

__device__ __forceinline__ ChunkShared chunk_shared(float* shared) {
    ChunkShared s;
    s.qs = shared;
    s.ks = s.qs + PC * PS;
    s.vs = s.ks + PC * PS;
    s.ls = s.vs + PC * PS;
    s.ts = s.ls + PC * PT;
    s.cum = s.ts + PC * PT;
    s.beta = s.cum + PC;
    s.grown = s.beta + PC;
    s.carry = s.grown + PC;
    return s;
}

// G = cumsum(g) in `cum` (warp 0, two tokens per lane); call after a __syncthreads() that ends
// the loads, and sync after it.
__device__ __forceinline__ void chunk_cumsum(float* cum, int warp, int lane) {
    if (warp == 0) {
        const float g0 = cum[2 * lane], g1 = cum[2 * lane + 1];
        float x = g0 + g1;
        for (int o = 1; o < 32; o <<= 1) {
            const float y = __shfl_up_sync(0xffffffffu, x, o);
            if (lane >= o) x += y;
        }
        const float before = x - g0 - g1;  // sum of the lanes before this one
        cum[2 * lane] = before + g0;
        cum[2 * lane + 1] = before + g0 + g1;
    }
}

// The products above for the chunk `head` (its index among all chunks: (sequence-head, chunk)),
// once qs, ks, vs, beta and cum (holding g) are loaded and a __syncthreads() has passed.
__device__ void chunk_products(const ChunkShared& sh, int64_t head, float* u_out, float* w_out,
                               float* q_out, float* a_out, float* k_out, float* decay_out) {
    const int thread = threadIdx.x, lane = thread % 32, warp = thread / 32;
    float *qs = sh.qs, *ks = sh.ks, *vs = sh.vs, *ls = sh.ls, *ts = sh.ts;
    float *cum = sh.cum, *beta = sh.beta, *grown = sh.grown, *carry = sh.carry;
    chunk_cumsum(cum, warp, lane);
    __syncthreads();
    if (thread < PC) {
        const float last = cum[PC - 1];
        grown[thread] = expf(cum[thread]);
        carry[thread] = expf(last - cum[thread]);
    }
    const int ti = thread / 16, tj = thread % 16;
    // L and A: sums over d of k_i k_j and q_i k_j.
    {
        float acc_l[4][4], acc_a[4][4];
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) acc_l[r][s] = acc_a[r][s] = 0.0f;
        for (int d = 0; d < PD; ++d) {
            float ki[4], qi[4], kj[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                ki[r] = ks[(ti + 16 * r) * PS + d];
                qi[r] = qs[(ti + 16 * r) * PS + d];
                kj[r] = ks[(tj + 16 * r) * PS + d];
            }
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 4; ++s) {
                    acc_l[r][s] += ki[r] * kj[s];
                    acc_a[r][s] += qi[r] * kj[s];
                }
        }
        __syncthreads();  // cum, grown, carry written
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) {
                const int i = ti + 16 * r, j = tj + 16 * s;
                const float decay = j <= i ? expf(cum[i] - cum[j]) : 0.0f;
                ls[i * PT + j] = j < i ? beta[i] * acc_l[r][s] * decay : 0.0f;
                a_out[(head * PC + i) * PC + j] = acc_a[r][s] * decay;
            }
    }
    __syncthreads();
    if (thread < PC) {
        // T = (I + L)^-1, column j = thread: T_jj = 1, T_ij = -sum_{j <= m < i} L_im T_mj.
        const int j = thread;
        for (int i = 0; i < j; ++i) ts[i * PT + j] = 0.0f;
        ts[j * PT + j] = 1.0f;
        for (int i = j + 1; i < PC; ++i) {
            float s0 = 0.0f, s1 = 0.0f;
            int m = j;
            for (; m + 1 < i; m += 2) {
                s0 += ls[i * PT + m] * ts[m * PT + j];
                s1 += ls[i * PT + m + 1] * ts[(m + 1) * PT + j];
            }
            if (m < i) s0 += ls[i * PT + m] * ts[m * PT + j];
            ts[i * PT + j] = -(s0 + s1);
        }
    } else {
        // Meanwhile: Q = q e^G, K^T = (k e^{G_last - G})^T, d = e^{G_last}.
        for (int x = thread - PC; x < PC * PD; x += 256 - PC) {
            const int c = x / PD, d = x % PD;
            q_out[(head * PC + c) * PD + d] = qs[c * PS + d] * grown[c];
        }
        for (int x = thread - PC; x < PC * PD; x += 256 - PC) {
            const int d = x / PC, c = x % PC;
            k_out[(head * PD + d) * PC + c] = ks[c * PS + d] * carry[c];
        }
        if (thread == PC) decay_out[head] = grown[PC - 1];
    }
    __syncthreads();
    // U = T (beta v) and W = T (beta e^G k): rows ti + 16 r, columns tj + 16 s (8 of them).
    float acc_u[4][8], acc_w[4][8];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int s = 0; s < 8; ++s) acc_u[r][s] = acc_w[r][s] = 0.0f;
    for (int j = 0; j < PC; ++j) {
        const float fu = beta[j], fw = beta[j] * grown[j];
        float tij[4], vj[8], kj[8];
#pragma unroll
        for (int r = 0; r < 4; ++r) tij[r] = ts[(ti + 16 * r) * PT + j];
#pragma unroll
        for (int s = 0; s < 8; ++s) {
            vj[s] = vs[j * PS + tj + 16 * s] * fu;
            kj[s] = ks[j * PS + tj + 16 * s] * fw;
        }
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 8; ++s) {
                acc_u[r][s] += tij[r] * vj[s];
                acc_w[r][s] += tij[r] * kj[s];
            }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int s = 0; s < 8; ++s) {
            const int i = ti + 16 * r, e = tj + 16 * s;
            u_out[(head * PC + i) * PD + e] = acc_u[r][s];
            w_out[(head * PC + i) * PD + e] = acc_w[r][s];
        }
}

