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

#define CHUNK_MAX 64
#define KEY_MAX 128

// Starts copying `count` float4 from global to shared memory (cp.async: no registers, all in
// flight at once), spread over the block's 256 threads; `wait_copies` ends them.
__device__ __forceinline__ void stage(float* to, const float* from, int count, int thread) {
    for (int i = thread; i < count; i += 256) {
        const unsigned dst = (unsigned)__cvta_generic_to_shared(to + 4 * i);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(from + 4 * i));
    }
}

__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits for this thread's copies; a __syncthreads() after it makes every thread's visible.
__device__ __forceinline__ void wait_copies() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

extern "C" __global__ void __launch_bounds__(256) deltanet_chunks_f32(
    const float* __restrict__ u,      // (BH, N, C, dv)
    const float* __restrict__ w,      // (BH, N, C, dk)
    const float* __restrict__ q,      // (BH, N, C, dk)
    const float* __restrict__ a,      // (BH, N, C, C), zero above the diagonal
    const float* __restrict__ kc,     // (BH, N, dk, C)
    const float* __restrict__ decay,  // (BH, N)
    float* __restrict__ state,        // (BH, dk, dv), read, then overwritten with the last state
    float* __restrict__ out,          // (BH, N, C, dv)
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
            if (c < c_len) fresh[c * 32 + lane] = u_rows[i] - acc_v[i];
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
