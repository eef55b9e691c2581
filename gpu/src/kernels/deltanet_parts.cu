// The state-free part of the chunked gated delta rule for training (`train::delta_rule`), written
// for lamar: forward from the layer's normed queries and keys (`deltanet_parts.cuh` makes the
// products), and its backward. Inputs are f32 and contiguous: q, k (BH, T, 128) (q already
// scaled), v (BH, T, 128), beta and g (BH, T); chunks of 64 tokens, one block of 256 threads per
// (chunk, sequence-head); tokens past T count as zero inputs with beta = g = 0.

#include "deltanet_parts.cuh"

// Forward: U, W, Q (BH, N, 64, 128), A (BH, N, 64, 64), K^T (BH, N, 128, 64) and d (BH, N),
// as `deltanet_chunks_f32` takes them. Grid (N, BH); dynamic shared memory PREP_SHARED floats.
extern "C" __global__ void __launch_bounds__(256) deltanet_parts_forward_f32(
    const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    const float* __restrict__ beta_in, const float* __restrict__ g_in, float* u_out,
    float* w_out, float* q_out, float* a_out, float* k_out, float* decay_out, int tokens) {
    extern __shared__ float shared[];
    const ChunkShared sh = chunk_shared(shared);
    const int n = blockIdx.x, chunks = gridDim.x;
    const int64_t bh = blockIdx.y;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int c = warp; c < PC; c += 8) {
        const int t = n * PC + c;
        const bool inside = t < tokens;
        const int64_t row = (bh * tokens + t) * PD;
#pragma unroll
        for (int x = 0; x < 4; ++x) {
            const int d = lane + 32 * x;
            sh.qs[c * PS + d] = inside ? q[row + d] : 0.0f;
            sh.ks[c * PS + d] = inside ? k[row + d] : 0.0f;
            sh.vs[c * PS + d] = inside ? v[row + d] : 0.0f;
        }
        if (lane == 0) {
            sh.beta[c] = inside ? beta_in[bh * tokens + t] : 0.0f;
            sh.cum[c] = inside ? g_in[bh * tokens + t] : 0.0f;
        }
    }
    __syncthreads();
    chunk_products(sh, bh * chunks + n, u_out, w_out, q_out, a_out, k_out, decay_out);
}

// ---------------------------------------------------------------------------------------------
// Backward. Per chunk, with D_ij = e^{G_i - G_j} (j <= i), P = (beta k) k^T, L = P . D strictly
// below the diagonal, T = (I + L)^-1, x = beta k e^G, S = q k^T, A = S . D, and the gradients of
// the forward's outputs dU, dW, dQ, dA, dK (given as dK^T) and dd:
//
//   dT = dU (beta v)^T + dW x^T       d(beta v) = T^T dU      dx = T^T dW
//   dL = -T^T dT T^T (strictly lower) dP = dL . D             dS = dA . D
//   d(beta k) = dP k + dx e^G         dq = dS k + dQ e^G
//   dk = dP^T (beta k) + dS^T q + d(beta k) beta + dK e^{G_last - G}
//   dv = d(beta v) beta               dbeta = rows(d(beta k) . k) + rows(d(beta v) . v)
//   E = dL . L + dA . A               dG = rows(dQ . Q) + rows(dx . x) - rows(dK . K) + rows(E) - cols(E)
//   dG_last += sum(rows(dK . K)) + dd e^{G_last};   dg = reverse cumsum of dG
//
// (`train::delta_rule::parts_backward` as candle operations). Grid (N, BH); dynamic shared memory
// BACK_SHARED floats (167 KB). Thread (ti, tj) = (t / 16, t % 16) owns rows ti + 16 r of every
// product and columns tj + 16 s (s < 4 of a 64-wide one, s < 8 of a 128-wide one).

#define BACK_SHARED (3 * PC * PS + 4 * PC * PT + 6 * PC)

// Row `c` (PD floats) of `from` into shared row `to` (stride PS) by one warp; zero when `inside`
// is false.
__device__ __forceinline__ void load_row(float* to, const float* from, bool inside, int lane) {
#pragma unroll
    for (int x = 0; x < 4; ++x) {
        const int d = lane + 32 * x;
        to[d] = inside ? from[d] : 0.0f;
    }
}

// Sum over the 16 threads that share ti (a half warp).
__device__ __forceinline__ float half_warp_sum(float x) {
    for (int offset = 8; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

extern "C" __global__ void __launch_bounds__(256) deltanet_parts_backward_f32(
    const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    const float* __restrict__ beta_in, const float* __restrict__ g_in,
    const float* __restrict__ d_u,   // (BH, N, 64, 128)
    const float* __restrict__ d_w,   // (BH, N, 64, 128)
    const float* __restrict__ d_qg,  // (BH, N, 64, 128): dQ
    const float* __restrict__ d_a,   // (BH, N, 64, 64)
    const float* __restrict__ d_kt,  // (BH, N, 128, 64): dK^T
    const float* __restrict__ d_d,   // (BH, N)
    float* __restrict__ dq, float* __restrict__ dk, float* __restrict__ dv,  // (BH, T, 128)
    float* __restrict__ dbeta, float* __restrict__ dg,                       // (BH, T)
    int tokens) {
    extern __shared__ float shared[];
    float* b1 = shared;         // PC x PS: q, then v, then dW, then dK
    float* ks = b1 + PC * PS;   // PC x PS: k
    float* b3 = ks + PC * PS;   // PC x PS: dU
    float* ls = b3 + PC * PS;   // PC x PT: L
    float* es = ls + PC * PT;   // PC x PT: E
    float* ts = es + PC * PT;   // PC x PT: T
    float* m4 = ts + PC * PT;   // PC x PT: dS, then dT, T^T dT, dP
    float* cum = m4 + PC * PT;  // PC: g, then G
    float* beta = cum + PC;     // PC
    float* grown = beta + PC;   // PC: e^G
    float* carry = grown + PC;  // PC: e^{G_last - G}
    float* d_cum = carry + PC;  // PC: dG
    float* d_beta = d_cum + PC; // PC
    const int n = blockIdx.x, chunks = gridDim.x;
    const int64_t bh = blockIdx.y;
    const int64_t head = bh * chunks + n;
    const int thread = threadIdx.x, lane = thread % 32, warp = thread / 32;
    const int ti = thread / 16, tj = thread % 16;
    const float* d_u_chunk = d_u + head * PC * PD;
    const float* d_w_chunk = d_w + head * PC * PD;
    const float* d_q_chunk = d_qg + head * PC * PD;
    const float* d_a_chunk = d_a + head * PC * PC;
    const float* d_kt_chunk = d_kt + head * PD * PC;

    // Loads: q, k; beta and g.
    for (int c = warp; c < PC; c += 8) {
        const int t = n * PC + c;
        const bool inside = t < tokens;
        const int64_t row = (bh * tokens + t) * PD;
        load_row(b1 + c * PS, q + row, inside, lane);
        load_row(ks + c * PS, k + row, inside, lane);
        if (lane == 0) {
            beta[c] = inside ? beta_in[bh * tokens + t] : 0.0f;
            cum[c] = inside ? g_in[bh * tokens + t] : 0.0f;
            d_cum[c] = 0.0f;
            d_beta[c] = 0.0f;
        }
    }
    __syncthreads();
    chunk_cumsum(cum, warp, lane);
    __syncthreads();
    if (thread < PC) {
        grown[thread] = expf(cum[thread]);
        carry[thread] = expf(cum[PC - 1] - cum[thread]);
    }
    // k k^T and q k^T; then L, E = dA . A and dS = dA . D.
    {
        float acc_l[4][4], acc_s[4][4];
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) acc_l[r][s] = acc_s[r][s] = 0.0f;
        for (int d = 0; d < PD; ++d) {
            float ki[4], qi[4], kj[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                ki[r] = ks[(ti + 16 * r) * PS + d];
                qi[r] = b1[(ti + 16 * r) * PS + d];
                kj[r] = ks[(tj + 16 * r) * PS + d];
            }
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 4; ++s) {
                    acc_l[r][s] += ki[r] * kj[s];
                    acc_s[r][s] += qi[r] * kj[s];
                }
        }
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) {
                const int i = ti + 16 * r, j = tj + 16 * s;
                const float decay = j <= i ? expf(cum[i] - cum[j]) : 0.0f;
                const float da = d_a_chunk[i * PC + j];
                ls[i * PT + j] = j < i ? beta[i] * acc_l[r][s] * decay : 0.0f;
                es[i * PT + j] = da * acc_s[r][s] * decay;
                m4[i * PT + j] = da * decay;
            }
    }
    __syncthreads();
    if (thread < PC) {
        // T = (I + L)^-1, column j = thread (as in the forward).
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
        // Meanwhile, warps 2..7: dG += rows(dQ . Q) = e^G_c sum_d dQ_cd q_cd.
        for (int c = warp - 2; c < PC; c += 6) {
            float acc = 0.0f;
#pragma unroll
            for (int x = 0; x < 4; ++x) {
                const int d = lane + 32 * x;
                acc += d_q_chunk[c * PD + d] * b1[c * PS + d];
            }
            acc = warp_sum(acc);
            if (lane == 0) d_cum[c] += acc * grown[c];
        }
    }
    // dq = dS k + dQ e^G (written out); dk starts as dS^T q (kept).
    float acc_k[4][8];
    {
        float acc_q[4][8];
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 8; ++s) acc_q[r][s] = acc_k[r][s] = 0.0f;
        for (int j = 0; j < PC; ++j) {
            float ds_ij[4], ds_ji[4], kj[8], qj[8];
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                ds_ij[r] = m4[(ti + 16 * r) * PT + j];
                ds_ji[r] = m4[j * PT + ti + 16 * r];
            }
#pragma unroll
            for (int s = 0; s < 8; ++s) {
                kj[s] = ks[j * PS + tj + 16 * s];
                qj[s] = b1[j * PS + tj + 16 * s];
            }
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 8; ++s) {
                    acc_q[r][s] += ds_ij[r] * kj[s];
                    acc_k[r][s] += ds_ji[r] * qj[s];
                }
        }
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int i = ti + 16 * r;
            const int t = n * PC + i;
            if (t < tokens) {
#pragma unroll
                for (int s = 0; s < 8; ++s) {
                    const int e = tj + 16 * s;
                    dq[(bh * tokens + t) * PD + e] = acc_q[r][s] + d_q_chunk[i * PD + e] * grown[i];
                }
            }
        }
    }
    __syncthreads();  // T made; q, dS no longer read
    // v into b1, dU into b3.
    for (int c = warp; c < PC; c += 8) {
        const int t = n * PC + c;
        load_row(b1 + c * PS, v + (bh * tokens + t) * PD, t < tokens, lane);
        load_row(b3 + c * PS, d_u_chunk + c * PD, true, lane);
    }
    __syncthreads();
    // dT = beta_j (dU v^T)_ij, then below + beta_j e^G_j (dW k^T)_ij; d(beta v) = T^T dU.
    float acc_t[4][4];
    {
        float acc_bv[4][8];
#pragma unroll
        for (int r = 0; r < 4; ++r) {
#pragma unroll
            for (int s = 0; s < 4; ++s) acc_t[r][s] = 0.0f;
#pragma unroll
            for (int s = 0; s < 8; ++s) acc_bv[r][s] = 0.0f;
        }
        for (int e = 0; e < PD; ++e) {
            float dui[4], vj[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                dui[r] = b3[(ti + 16 * r) * PS + e];
                vj[r] = b1[(tj + 16 * r) * PS + e];
            }
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 4; ++s) acc_t[r][s] += dui[r] * vj[s];
        }
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) acc_t[r][s] *= beta[tj + 16 * s];
        for (int j = 0; j < PC; ++j) {
            float tji[4], duj[8];
#pragma unroll
            for (int r = 0; r < 4; ++r) tji[r] = ts[j * PT + ti + 16 * r];
#pragma unroll
            for (int s = 0; s < 8; ++s) duj[s] = b3[j * PS + tj + 16 * s];
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 8; ++s) acc_bv[r][s] += tji[r] * duj[s];
        }
        // dv = beta d(beta v); dbeta += rows(d(beta v) . v).
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int i = ti + 16 * r;
            const int t = n * PC + i;
            float dot = 0.0f;
#pragma unroll
            for (int s = 0; s < 8; ++s) {
                const int e = tj + 16 * s;
                dot += acc_bv[r][s] * b1[i * PS + e];
                if (t < tokens) dv[(bh * tokens + t) * PD + e] = acc_bv[r][s] * beta[i];
            }
            dot = half_warp_sum(dot);
            if (tj == 0) d_beta[i] += dot;
        }
    }
    __syncthreads();  // v and dU no longer read
    for (int c = warp; c < PC; c += 8) load_row(b1 + c * PS, d_w_chunk + c * PD, true, lane);
    __syncthreads();
    // dT += beta_j e^G_j (dW k^T)_ij; dx = T^T dW, d(beta k) = dx e^G (kept);
    // dG += rows(dx . x) = beta_i e^G_i rows(dx . k).
    float acc_bk[4][8];
    {
        float acc_dwk[4][4];
#pragma unroll
        for (int r = 0; r < 4; ++r) {
#pragma unroll
            for (int s = 0; s < 4; ++s) acc_dwk[r][s] = 0.0f;
#pragma unroll
            for (int s = 0; s < 8; ++s) acc_bk[r][s] = 0.0f;
        }
        for (int e = 0; e < PD; ++e) {
            float dwi[4], kj[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                dwi[r] = b1[(ti + 16 * r) * PS + e];
                kj[r] = ks[(tj + 16 * r) * PS + e];
            }
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 4; ++s) acc_dwk[r][s] += dwi[r] * kj[s];
        }
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) {
                const int j = tj + 16 * s;
                acc_t[r][s] += beta[j] * grown[j] * acc_dwk[r][s];
            }
        for (int j = 0; j < PC; ++j) {
            float tji[4], dwj[8];
#pragma unroll
            for (int r = 0; r < 4; ++r) tji[r] = ts[j * PT + ti + 16 * r];
#pragma unroll
            for (int s = 0; s < 8; ++s) dwj[s] = b1[j * PS + tj + 16 * s];
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 8; ++s) acc_bk[r][s] += tji[r] * dwj[s];
        }
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int i = ti + 16 * r;
            float dot = 0.0f;
#pragma unroll
            for (int s = 0; s < 8; ++s) {
                dot += acc_bk[r][s] * ks[i * PS + tj + 16 * s];
                acc_bk[r][s] *= grown[i];
            }
            dot = half_warp_sum(dot);
            if (tj == 0) d_cum[i] += dot * beta[i] * grown[i];
        }
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) m4[(ti + 16 * r) * PT + tj + 16 * s] = acc_t[r][s];
    }
    __syncthreads();  // dT in m4; dW no longer read
    // dK^T into b1 as dK (rows = tokens), while Y = T^T dT is made.
    for (int e = warp; e < PD; e += 8) {
        b1[lane * PS + e] = d_kt_chunk[e * PC + lane];
        b1[(lane + 32) * PS + e] = d_kt_chunk[e * PC + lane + 32];
    }
    {
        float acc_y[4][4];
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) acc_y[r][s] = 0.0f;
        for (int m = 0; m < PC; ++m) {
            float tmi[4], dtm[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                tmi[r] = ts[m * PT + ti + 16 * r];
                dtm[r] = m4[m * PT + tj + 16 * r];
            }
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 4; ++s) acc_y[r][s] += tmi[r] * dtm[s];
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) m4[(ti + 16 * r) * PT + tj + 16 * s] = acc_y[r][s];
    }
    __syncthreads();
    // dL = -Y T^T strictly below the diagonal; E += dL . L; dP = dL . D into m4.
    {
        float acc_l[4][4];
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) acc_l[r][s] = 0.0f;
        for (int m = 0; m < PC; ++m) {
            float yim[4], tjm[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                yim[r] = m4[(ti + 16 * r) * PT + m];
                tjm[r] = ts[(tj + 16 * r) * PT + m];
            }
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int s = 0; s < 4; ++s) acc_l[r][s] += yim[r] * tjm[s];
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 4; ++s) {
                const int i = ti + 16 * r, j = tj + 16 * s;
                const float dl = j < i ? -acc_l[r][s] : 0.0f;
                es[i * PT + j] += dl * ls[i * PT + j];
                m4[i * PT + j] = j < i ? dl * expf(cum[i] - cum[j]) : 0.0f;
            }
    }
    __syncthreads();
    // d(beta k) += dP k; dk += dP^T (beta k) + d(beta k) beta + dK e^{G_last - G};
    // dbeta += rows(d(beta k) . k); dG -= rows(dK . K).
    for (int j = 0; j < PC; ++j) {
        float dp_ij[4], dp_ji[4], kj[8];
        const float bj = beta[j];
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            dp_ij[r] = m4[(ti + 16 * r) * PT + j];
            dp_ji[r] = m4[j * PT + ti + 16 * r];
        }
#pragma unroll
        for (int s = 0; s < 8; ++s) kj[s] = ks[j * PS + tj + 16 * s];
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int s = 0; s < 8; ++s) {
                acc_bk[r][s] += dp_ij[r] * kj[s];
                acc_k[r][s] += dp_ji[r] * bj * kj[s];
            }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int i = ti + 16 * r;
        const int t = n * PC + i;
        float dot_bk = 0.0f, dot_kc = 0.0f;
#pragma unroll
        for (int s = 0; s < 8; ++s) {
            const int e = tj + 16 * s;
            const float ki = ks[i * PS + e], dkc = b1[i * PS + e];
            dot_bk += acc_bk[r][s] * ki;
            dot_kc += dkc * ki;
            const float total = acc_k[r][s] + acc_bk[r][s] * beta[i] + dkc * carry[i];
            if (t < tokens) dk[(bh * tokens + t) * PD + e] = total;
        }
        dot_bk = half_warp_sum(dot_bk);
        dot_kc = half_warp_sum(dot_kc);
        if (tj == 0) {
            d_beta[i] += dot_bk;
            d_cum[i] -= dot_kc * carry[i];
        }
    }
    __syncthreads();
    // dG += rows(E) - cols(E); the last token's terms; dg = reverse cumsum; dbeta and dg out.
    if (thread < PC) {
        const int i = thread;
        float row = 0.0f, col = 0.0f;
        for (int j = 0; j < PC; ++j) {
            row += es[i * PT + j];
            col += es[j * PT + i];
        }
        d_cum[i] += row - col;
    }
    __syncthreads();
    if (warp == 0) {
        // The last token: + sum over tokens of rows(dK . K) + dd e^{G_last}. rows(dK . K) is
        // what was taken from d_cum above; recompute it from b1 and ks by lanes.
        float carried = 0.0f;
        for (int c = lane; c < PC; c += 32) {
            float dot = 0.0f;
            for (int e = 0; e < PD; ++e) dot += b1[c * PS + e] * ks[c * PS + e];
            carried += dot * carry[c];
        }
        carried = warp_sum(carried);
        // Reverse cumulative sum over 64 tokens: lane takes tokens 63 - 2 lane and 62 - 2 lane.
        float last_terms = carried + d_d[head] * grown[PC - 1];
        const int hi = PC - 1 - 2 * lane, lo = hi - 1;
        const float x_hi = d_cum[hi] + (lane == 0 ? last_terms : 0.0f), x_lo = d_cum[lo];
        float x = x_hi + x_lo;
        for (int o = 1; o < 32; o <<= 1) {
            const float y = __shfl_up_sync(0xffffffffu, x, o);
            if (lane >= o) x += y;
        }
        const float after = x - x_hi - x_lo;  // sum over the tokens after hi
        const float g_hi = after + x_hi, g_lo = g_hi + x_lo;
        const int t_hi = n * PC + hi, t_lo = n * PC + lo;
        if (t_hi < tokens) {
            dg[bh * tokens + t_hi] = g_hi;
            dbeta[bh * tokens + t_hi] = d_beta[hi];
        }
        if (t_lo < tokens) {
            dg[bh * tokens + t_lo] = g_lo;
            dbeta[bh * tokens + t_lo] = d_beta[lo];
        }
    }
}
