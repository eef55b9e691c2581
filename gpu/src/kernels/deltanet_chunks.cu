// The chunked gated delta rule's pass from chunk to chunk (a DeltaNet layer's prefill), written
// for lamar. Everything that does not involve the recurrent state is computed for all chunks at
// once by `qwen35::delta_rule::delta_rule_chunked` (candle operations, f32); what is left is
// sequential: for chunk n, with S the state (dk x dv),
//
//   V' = U_n - W_n S          (C x dv)
//   O_n = Q_n S + A_n V'      (C x dv)
//   S <- d_n S + K_n V'       (K_n = (dk x C), d_n a scalar)
//
// One block per (sequence-head, 32 value columns): the state's columns are independent, so the
// block's slice of S lives in shared memory for all chunks. Each chunk's W, Q, K and A are
// copied into shared memory asynchronously (cp.async), W and Q while the previous chunk is
// still being finished; lane = value column, the 8 warps take rows. Every sum is float, as in the candle operations
// it replaces (which sum in another order: agreement is to rounding).
//
// Block (32, 8); dynamic shared memory (dk * 32 + C * 32 + 3 * C * dk + C * C) floats;
// C <= 64, dk <= 128, C % 4 == 0, dk % 4 == 0, dv % 32 == 0 (checked by the launcher).

#include "common.cuh"
#include "deltanet_parts.cuh"
#include "async_copy.cuh"

#define CHUNK_MAX 64
#define KEY_MAX 128

extern "C" __global__ void __launch_bounds__(256) deltanet_chunks_f32(
    const float* __restrict__ u,      // (BH, N, C, dv)
    const float* __restrict__ w,      // (BH, N, C, dk)
    const float* __restrict__ q,      // (BH, N, C, dk)
    const float* __restrict__ a,      // (BH, N, C, C), zero above the diagonal
    const float* __restrict__ kc,     // (BH, N, dk, C)
    const float* __restrict__ decay,  // (BH, N)
    float* __restrict__ state,        // (BH, dk, dv), read, then overwritten with the last state
    float* __restrict__ out,          // (BH, N, C, dv)
    float* __restrict__ states,       // (BH, N, dk, dv): S entering each chunk (training's
                                      // backward); may be null
    float* __restrict__ fresh_out,    // (BH, N, C, dv): V' (training's backward); may be null
    int chunks, int c_len, int dk, int dv) {
    extern __shared__ float4 shared4[];
    float* s = reinterpret_cast<float*>(shared4);  // dk x 32: this block's columns of S
    float* fresh = s + dk * 32;                    // C x 32: V'
    float* tw = fresh + c_len * 32;                // C x dk
    float* tq = tw + c_len * dk;                   // C x dk
    float* tk = tq + c_len * dk;                   // dk x C
    float* ta = tk + dk * c_len;                   // C x C
    const int lane = threadIdx.x, warp = threadIdx.y, thread = warp * 32 + lane;
    const int64_t bh = blockIdx.y;
    const int col = blockIdx.x * 32 + lane;
    float* st = state + bh * dk * dv;
    for (int d = warp; d < dk; d += 8) s[d * 32 + lane] = st[(int64_t)d * dv + col];
    constexpr int ROWS = CHUNK_MAX / 8;  // chunk rows per warp
    constexpr int KEYS = KEY_MAX / 8;    // state rows per warp
    // Chunk n + 1's W and Q are fetched while chunk n finishes (they are free once V' is
    // made), its K and A once chunk n no longer reads them.
    const int64_t first = bh * chunks;
    stage(tw, w + first * c_len * dk, c_len * dk / 4, thread);
    stage(tq, q + first * c_len * dk, c_len * dk / 4, thread);
    stage(tk, kc + first * dk * c_len, dk * c_len / 4, thread);
    stage(ta, a + first * c_len * c_len, c_len * c_len / 4, thread);
    commit_copies();
    for (int n = 0; n < chunks; ++n) {
        const int64_t chunk = bh * chunks + n;
        // This chunk's U, for the rows this thread makes V' of (loads in flight meanwhile).
        float u_rows[ROWS];
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
            const int c = warp + 8 * i;
            u_rows[i] = c < c_len ? u[(chunk * c_len + c) * dv + col] : 0.0f;
        }
        wait_copies();
        __syncthreads();
        if (states != nullptr) {
            float* at = states + ((bh * chunks + n) * dk) * dv + col;
            for (int d = warp; d < dk; d += 8) at[(int64_t)d * dv] = s[d * 32 + lane];
        }
        // V' = U - W S and the first half of O (Q S), rows c = warp + 8 i.
        float acc_v[ROWS], acc_o[ROWS];
#pragma unroll
        for (int i = 0; i < ROWS; ++i) acc_v[i] = acc_o[i] = 0.0f;
        for (int d = 0; d < dk; d += 4) {
            const float s0 = s[d * 32 + lane], s1 = s[(d + 1) * 32 + lane];
            const float s2 = s[(d + 2) * 32 + lane], s3 = s[(d + 3) * 32 + lane];
#pragma unroll
            for (int i = 0; i < ROWS; ++i) {
                const int c = warp + 8 * i;
                if (c < c_len) {
                    const float4 wv = *reinterpret_cast<const float4*>(tw + c * dk + d);
                    const float4 qv = *reinterpret_cast<const float4*>(tq + c * dk + d);
                    acc_v[i] += wv.x * s0 + wv.y * s1 + wv.z * s2 + wv.w * s3;
                    acc_o[i] += qv.x * s0 + qv.y * s1 + qv.z * s2 + qv.w * s3;
                }
            }
        }
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
            const int c = warp + 8 * i;
            if (c < c_len) {
                const float value = u_rows[i] - acc_v[i];
                fresh[c * 32 + lane] = value;
                if (fresh_out != nullptr) fresh_out[(chunk * c_len + c) * dv + col] = value;
            }
        }
        __syncthreads();
        if (n + 1 < chunks) {
            stage(tw, w + (chunk + 1) * c_len * dk, c_len * dk / 4, thread);
            stage(tq, q + (chunk + 1) * c_len * dk, c_len * dk / 4, thread);
            commit_copies();
        }
        // O = Q S + A V' (A is zero above the diagonal: only columns up to c count).
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
            const int c = warp + 8 * i;
            if (c < c_len) {
                float acc = acc_o[i];
                for (int j = 0; j <= c; j += 4) {
                    const float4 av = *reinterpret_cast<const float4*>(ta + c * c_len + j);
                    acc += av.x * fresh[j * 32 + lane] + av.y * fresh[(j + 1) * 32 + lane] +
                           av.z * fresh[(j + 2) * 32 + lane] + av.w * fresh[(j + 3) * 32 + lane];
                }
                out[(chunk * c_len + c) * dv + col] = acc;
            }
        }
        // S <- d S + K V', rows d = warp + 8 i (each thread owns its entries of S).
        const float dn = decay[chunk];
        float acc_s[KEYS];
#pragma unroll
        for (int i = 0; i < KEYS; ++i) {
            const int d = warp + 8 * i;
            acc_s[i] = d < dk ? dn * s[d * 32 + lane] : 0.0f;
        }
        for (int j = 0; j < c_len; j += 4) {
            const float f0 = fresh[j * 32 + lane], f1 = fresh[(j + 1) * 32 + lane];
            const float f2 = fresh[(j + 2) * 32 + lane], f3 = fresh[(j + 3) * 32 + lane];
#pragma unroll
            for (int i = 0; i < KEYS; ++i) {
                const int d = warp + 8 * i;
                if (d < dk) {
                    const float4 kv = *reinterpret_cast<const float4*>(tk + d * c_len + j);
                    acc_s[i] += kv.x * f0 + kv.y * f1 + kv.z * f2 + kv.w * f3;
                }
            }
        }
#pragma unroll
        for (int i = 0; i < KEYS; ++i) {
            const int d = warp + 8 * i;
            if (d < dk) s[d * 32 + lane] = acc_s[i];
        }
        __syncthreads();
        if (n + 1 < chunks) {
            stage(tk, kc + (chunk + 1) * dk * c_len, dk * c_len / 4, thread);
            stage(ta, a + (chunk + 1) * c_len * c_len, c_len * c_len / 4, thread);
            commit_copies();
        }
    }
    for (int d = warp; d < dk; d += 8) st[(int64_t)d * dv + col] = s[d * 32 + lane];
}

// The adjoint of that pass (training's backward), for the outputs' gradient dO: walking the
// chunks in reverse with dS the gradient of the state after chunk n (after the last: the final
// state's gradient, or zero when it is not given),
//
//   dV' = A^T dO_n + K_n^T dS     (C x dv)
//   dS <- Q_n^T dO_n + d_n dS - W_n^T dV'
//
// Like the forward pass, every value column is independent: one block per (sequence-head, 32
// value columns), its slice of dS in shared memory. The products that sum over the value
// columns (the gradients of Q, W, A, K and d) are left to batched matrix products over all
// chunks at once: this kernel writes dV' and the dS after every chunk for them.
//
// Block (32, 8); dynamic shared memory (dk * 32 + 2 * C * 32 + 3 * C * dk + C * C) floats.
extern "C" __global__ void __launch_bounds__(256) deltanet_chunks_backward_f32(
    const float* __restrict__ w,      // (BH, N, C, dk)
    const float* __restrict__ q,      // (BH, N, C, dk)
    const float* __restrict__ a,      // (BH, N, C, C), zero above the diagonal
    const float* __restrict__ kc,     // (BH, N, dk, C)
    const float* __restrict__ decay,  // (BH, N)
    const float* __restrict__ d_out,  // (BH, N, C, dv)
    const float* __restrict__ d_last, // (BH, dk, dv): the final state's gradient; may be null
    float* __restrict__ d_fresh,      // (BH, N, C, dv): dV'
    float* __restrict__ d_after,      // (BH, N, dk, dv): dS after each chunk
    int chunks, int c_len, int dk, int dv) {
    extern __shared__ float4 shared4[];
    float* ds = reinterpret_cast<float*>(shared4);  // dk x 32: this block's columns of dS
    float* dfresh = ds + dk * 32;                   // C x 32: dV'
    float* dout = dfresh + c_len * 32;              // C x 32: dO
    float* tw = dout + c_len * 32;                  // C x dk
    float* tq = tw + c_len * dk;                    // C x dk
    float* tk = tq + c_len * dk;                    // dk x C
    float* ta = tk + dk * c_len;                    // C x C
    const int lane = threadIdx.x, warp = threadIdx.y, thread = warp * 32 + lane;
    const int64_t bh = blockIdx.y;
    const int col = blockIdx.x * 32 + lane;
    for (int d = warp; d < dk; d += 8)
        ds[d * 32 + lane] = d_last != nullptr ? d_last[(bh * dk + d) * dv + col] : 0.0f;
    constexpr int ROWS = CHUNK_MAX / 8;
    constexpr int KEYS = KEY_MAX / 8;
    const int64_t last = bh * chunks + chunks - 1;
    stage(tw, w + last * c_len * dk, c_len * dk / 4, thread);
    stage(tq, q + last * c_len * dk, c_len * dk / 4, thread);
    stage(tk, kc + last * dk * c_len, dk * c_len / 4, thread);
    stage(ta, a + last * c_len * c_len, c_len * c_len / 4, thread);
    commit_copies();
    for (int n = chunks - 1; n >= 0; --n) {
        const int64_t chunk = bh * chunks + n;
        for (int c = warp; c < c_len; c += 8) dout[c * 32 + lane] = d_out[(chunk * c_len + c) * dv + col];
        {
            float* at = d_after + (chunk * dk) * dv + col;
            for (int d = warp; d < dk; d += 8) at[(int64_t)d * dv] = ds[d * 32 + lane];
        }
        wait_copies();
        __syncthreads();
        // dV' rows c = warp + 8 i: sum_{j >= c} A_jc dO_j + sum_d K_dc dS_d.
        float acc_v[ROWS];
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
            const int c = warp + 8 * i;
            float acc = 0.0f;
            if (c < c_len) {
                for (int j = c; j < c_len; ++j) acc += ta[j * c_len + c] * dout[j * 32 + lane];
                for (int d = 0; d < dk; ++d) acc += tk[d * c_len + c] * ds[d * 32 + lane];
            }
            acc_v[i] = acc;
        }
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
            const int c = warp + 8 * i;
            if (c < c_len) {
                dfresh[c * 32 + lane] = acc_v[i];
                d_fresh[(chunk * c_len + c) * dv + col] = acc_v[i];
            }
        }
        __syncthreads();
        if (n > 0) {
            stage(tk, kc + (chunk - 1) * dk * c_len, dk * c_len / 4, thread);
            stage(ta, a + (chunk - 1) * c_len * c_len, c_len * c_len / 4, thread);
            commit_copies();
        }
        // dS <- Q^T dO + d dS - W^T dV', rows d = warp + 8 i (each thread owns its entries).
        const float dn = decay[chunk];
        float acc_s[KEYS];
#pragma unroll
        for (int i = 0; i < KEYS; ++i) {
            const int d = warp + 8 * i;
            acc_s[i] = d < dk ? dn * ds[d * 32 + lane] : 0.0f;
        }
        for (int c = 0; c < c_len; ++c) {
            const float o = dout[c * 32 + lane], f = dfresh[c * 32 + lane];
#pragma unroll
            for (int i = 0; i < KEYS; ++i) {
                const int d = warp + 8 * i;
                if (d < dk) acc_s[i] += tq[c * dk + d] * o - tw[c * dk + d] * f;
            }
        }
#pragma unroll
        for (int i = 0; i < KEYS; ++i) {
            const int d = warp + 8 * i;
            if (d < dk) ds[d * 32 + lane] = acc_s[i];
        }
        __syncthreads();
        if (n > 0) {
            stage(tw, w + (chunk - 1) * c_len * dk, c_len * dk / 4, thread);
            stage(tq, q + (chunk - 1) * c_len * dk, c_len * dk / 4, thread);
            commit_copies();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The state-free part of the chunked rule (`deltanet_parts.cuh`) straight from the convolution's
// output, for Qwen3.5's sizes: per (row b, value head h, chunk n), the block loads its tokens with
//
//   q_c = q / sqrt(|q|^2 + 1e-6) / sqrt(dk),  k_c = k / sqrt(|k|^2 + 1e-6)  (L2 norms, float)
//   beta_c = sigmoid(b_c),  g_c = -exp(A_log) * softplus(a_c + dt_bias)
//
// (what `Chunks::prepare` computes with candle operations). Query/key head of value head h:
// h / (nv / nk).

template <typename T>
__device__ void chunk_prepare(const T* mixed, const T* beta_in, int64_t beta_stride, const T* a_in,
                              int64_t a_stride, const float* neg_a, const float* dt_bias,
                              float* u_out, float* w_out, float* q_out, float* a_out, float* k_out,
                              float* decay_out, int tokens, int nk, int nv) {
    extern __shared__ float shared[];
    const ChunkShared sh = chunk_shared(shared);
    float *qs = sh.qs, *ks = sh.ks, *vs = sh.vs, *cum = sh.cum, *beta = sh.beta;
    const int n = blockIdx.x, h = blockIdx.y;
    const int64_t b = blockIdx.z;
    const int chunks = gridDim.x;
    const int thread = threadIdx.x, lane = thread % 32, warp = thread / 32;
    const int hk = h / (nv / nk);
    const int channels = 2 * nk * PD + nv * PD;

    // Loads, norms and gates: warp w takes tokens w + 8 i.
    for (int c = warp; c < PC; c += 8) {
        const int t = n * PC + c;
        float qv[4], kv[4], vv[4];
        float qq = 0.0f, kk = 0.0f, g = 0.0f, bt = 0.0f;
        if (t < tokens) {
            const T* row = mixed + (b * tokens + t) * channels;
#pragma unroll
            for (int x = 0; x < 4; ++x) {
                const int d = lane + 32 * x;
                qv[x] = to_float(row[hk * PD + d]);
                kv[x] = to_float(row[nk * PD + hk * PD + d]);
                vv[x] = to_float(row[2 * nk * PD + h * PD + d]);
                qq += qv[x] * qv[x];
                kk += kv[x] * kv[x];
            }
            const float braw = to_float(beta_in[(b * tokens + t) * beta_stride + h]);
            const float araw = to_float(a_in[(b * tokens + t) * a_stride + h]) + dt_bias[h];
            bt = 1.0f / (1.0f + expf(-braw));
            g = neg_a[h] * (fmaxf(araw, 0.0f) + logf(1.0f + expf(-fabsf(araw))));
        } else {
#pragma unroll
            for (int x = 0; x < 4; ++x) qv[x] = kv[x] = vv[x] = 0.0f;
        }
        const float q_scale = rsqrtf(warp_sum(qq) + 1e-6f) * rsqrtf((float)PD);
        const float k_scale = rsqrtf(warp_sum(kk) + 1e-6f);
#pragma unroll
        for (int x = 0; x < 4; ++x) {
            const int d = lane + 32 * x;
            qs[c * PS + d] = qv[x] * q_scale;
            ks[c * PS + d] = kv[x] * k_scale;
            vs[c * PS + d] = vv[x];
        }
        if (lane == 0) {
            beta[c] = bt;
            cum[c] = g;
        }
    }
    __syncthreads();
    chunk_products(sh, (b * nv + h) * chunks + n, u_out, w_out, q_out, a_out, k_out, decay_out);
}

#define PREPARE_KERNEL(SUFFIX, T)                                                                 \
    extern "C" __global__ void __launch_bounds__(256) deltanet_chunk_prepare_##SUFFIX(            \
        const T* mixed, const T* beta_in, int64_t beta_stride, const T* a_in, int64_t a_stride,  \
        const float* neg_a, const float* dt_bias, float* u, float* w, float* q, float* a,        \
        float* k, float* decay, int tokens, int nk, int nv) {                                     \
        chunk_prepare<T>(mixed, beta_in, beta_stride, a_in, a_stride, neg_a, dt_bias, u, w, q, a, \
                         k, decay, tokens, nk, nv);                                               \
    }

PREPARE_KERNEL(f32, float)
PREPARE_KERNEL(bf16, __nv_bfloat16)
