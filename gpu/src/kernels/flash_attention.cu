// Causal softmax attention over whole sequences, forward and backward, without any [T x T]
// matrix (FlashAttention-2's tiling and online softmax, written for lamar): the full-attention
// layers of training, head size 256, bf16 inputs, grouped-query heads (query head h reads
// key/value head h / (H / KVH)), scores in f32 on the tensor cores (mma.sync m16n8k16).
//
//   forward:  O = softmax(scale Q K^T, causal) V, and each query's log-sum-exp of scaled scores
//   backward: with P recomputed from the log-sum-exp and delta = rowsum(dO * O),
//             dV = P^T dO,  dP = dO V^T,  dS = P * (dP - delta),  dQ = scale dS K,  dK = scale dS^T Q
//
// Tiles of 64 queries x 64 keys; shared-memory rows padded to HD + 8 values (16 bytes past the
// head) so that ldmatrix reads 8 rows without bank conflicts. Layouts: q (B, H, T, HD), k and v
// (B, KVH, T, HD), the log-sum-exp and delta (B, H, T) f32; rows past T read as zero. HD is 256
// (Qwen3.5); the forward kernel is also built for 128 (flash_attention_128.cu).
//
// flash_forward: grid (query tiles, H, B), 4 warps, a warp owns 16 query rows.
// flash_backward_dq: the same grid and warps, dQ accumulated in registers over key tiles.
// flash_backward_dkdv: grid (key tiles, KVH, B), 8 warps: warp w owns 16 keys (w % 4) and half
// the head (w / 4) of dK and dV, accumulated over the group's query heads and query tiles.

#include "common.cuh"

// Head size: 256 here; flash_attention_128.cu defines 128 first (the forward kernel only).
#ifndef HD
#define HD 256
#endif
#define TILE 64
#define STRIDE (HD + 8)
#define TILE_ELEMS (TILE * STRIDE)

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ void copy16(bf16* to, const bf16* from, bool valid) {
    const unsigned dst = (unsigned)__cvta_generic_to_shared(to);
    const int size = valid ? 16 : 0;  // 0: the 16 bytes are zero-filled
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(from), "r"(size));
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void wait_pending() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Starts copying rows row0 .. row0 + 63 of a (T, HD) matrix into a tile (rows past T zero).
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* src, int row0, int t, int thread,
                                          int threads) {
    for (int i = thread; i < TILE * (HD / 8); i += threads) {
        const int r = i / (HD / 8), c = i % (HD / 8);
        const int row = row0 + r;
        const bool valid = row < t;
        copy16(tile + r * STRIDE + c * 8, src + (int64_t)(valid ? row : 0) * HD + c * 8, valid);
    }
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const bf16* p) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const bf16* p) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

// c (16 x 8, f32) += a (16 x 16) b (16 x 8), bf16 operands.
__device__ __forceinline__ void mma(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                    unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}

// Sets every accumulator of a fragment array to zero.
template <int N> __device__ __forceinline__ void zero(float (&acc)[N][4]) {
#pragma unroll
    for (int i = 0; i < N; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
}

// acc (16 x 64) += A[a_row0 .. +16][:] B[0 .. 64][:]^T over the whole head (A and B tiles in
// shared memory, rows of HD values): the scores of 16 rows against a tile's 64 rows.
__device__ __forceinline__ void rows_times_tile_t(float (&acc)[8][4], const bf16* a, int a_row0,
                                                  const bf16* b, int lane) {
#pragma unroll 4
    for (int k = 0; k < HD; k += 16) {
        unsigned fa[4];
        ldmatrix_x4(fa, a + (a_row0 + lane % 16) * STRIDE + k + (lane / 16) * 8);
#pragma unroll
        for (int np = 0; np < 4; ++np) {
            unsigned fb[4];
            ldmatrix_x4(fb, b + (np * 16 + lane % 8 + (lane / 16) * 8) * STRIDE + k +
                                ((lane / 8) % 2) * 8);
            mma(acc[2 * np], fa, fb[0], fb[1]);
            mma(acc[2 * np + 1], fa, fb[2], fb[3]);
        }
    }
}

// The f32 accumulators of a 16 x 64 product as bf16 A operands of four 16 x 16 steps.
__device__ __forceinline__ void as_operands(const float (&s)[8][4], unsigned (&p)[4][4]) {
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
        p[kk][0] = pack(s[2 * kk][0], s[2 * kk][1]);
        p[kk][1] = pack(s[2 * kk][2], s[2 * kk][3]);
        p[kk][2] = pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        p[kk][3] = pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
}

// acc (16 x 8 NT) += P (16 x 64, operands) B[0 .. 64][col0 .. col0 + 8 NT] (B a tile in shared
// memory, rows = the 64 summed positions).
template <int NT>
__device__ __forceinline__ void operands_times_tile(float (&acc)[NT][4], const unsigned (&p)[4][4],
                                                    const bf16* b, int col0, int lane) {
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
        for (int dp = 0; dp < NT / 2; ++dp) {
            unsigned fb[4];
            ldmatrix_x4_trans(fb, b + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * STRIDE + col0 +
                                      dp * 16 + (lane / 16) * 8);
            mma(acc[2 * dp], p[kk], fb[0], fb[1]);
            mma(acc[2 * dp + 1], p[kk], fb[2], fb[3]);
        }
    }
}

// Writes 16 rows (row0 + lane / 4 and + 8) of an accumulator, times `factor` per row, as bf16
// into a (T, HD) matrix at columns col0 ...; rows past T are skipped.
template <int NT>
__device__ __forceinline__ void store_rows(bf16* dst, const float (&acc)[NT][4], int row0,
                                           int col0, float f0, float f1, int t, int lane) {
    const int g = lane / 4, c = 2 * (lane % 4);
    const int r0 = row0 + g, r1 = row0 + g + 8;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
        const int col = col0 + nt * 8 + c;
        if (r0 < t)
            *reinterpret_cast<unsigned*>(dst + (int64_t)r0 * HD + col) =
                pack(acc[nt][0] * f0, acc[nt][1] * f0);
        if (r1 < t)
            *reinterpret_cast<unsigned*>(dst + (int64_t)r1 * HD + col) =
                pack(acc[nt][2] * f1, acc[nt][3] * f1);
    }
}

#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

extern "C" __global__ void __launch_bounds__(128, 1)
    flash_forward_bf16(const bf16* __restrict__ q, const bf16* __restrict__ k,
                       const bf16* __restrict__ v, bf16* __restrict__ out,
                       float* __restrict__ lse, int t, int heads, int kv_heads, float scale) {
    extern __shared__ float4 shared4[];
    bf16* qs = reinterpret_cast<bf16*>(shared4);
    bf16* ks = qs + TILE_ELEMS;
    bf16* vs = ks + TILE_ELEMS;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, thread = threadIdx.x;
    const int tile = gridDim.x - 1 - blockIdx.x;  // the longest rows first
    const int h = blockIdx.y;
    const int64_t b = blockIdx.z;
    const int kvh = h / (heads / kv_heads);
    const bf16* qh = q + (b * heads + h) * (int64_t)t * HD;
    const bf16* kh = k + (b * kv_heads + kvh) * (int64_t)t * HD;
    const bf16* vh = v + (b * kv_heads + kvh) * (int64_t)t * HD;
    const int q0 = tile * TILE;
    load_tile(qs, qh, q0, t, thread, 128);
    commit();
    const float scale2 = scale * LOG2E;  // scores in log2 units
    float o[HD / 8][4];
    zero(o);
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    const int g = lane / 4, c = 2 * (lane % 4);
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;
    for (int j = 0; j <= tile; ++j) {
        const int k0 = j * TILE;
        load_tile(ks, kh, k0, t, thread, 128);
        commit();
        load_tile(vs, vh, k0, t, thread, 128);
        commit();
        wait_pending<1>();  // Q and K here, V may still be arriving
        __syncthreads();
        float s[8][4];
        zero(s);
        rows_times_tile_t(s, qs, warp * 16, ks, lane);
        // Scale, mask the future (the diagonal tile only), online softmax.
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int key = k0 + nt * 8 + c + e;
                s[nt][e] = (j == tile && key > row0) ? -INFINITY : s[nt][e] * scale2;
                s[nt][2 + e] = (j == tile && key > row1) ? -INFINITY : s[nt][2 + e] * scale2;
                mx0 = fmaxf(mx0, s[nt][e]);
                mx1 = fmaxf(mx1, s[nt][2 + e]);
            }
        }
#pragma unroll
        for (int o2 = 1; o2 < 4; o2 <<= 1) {
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o2));
        }
        // Every row sees key 0 in the first tile: the maxima are finite from then on.
        const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
        const float f0 = exp2f(m0 - n0), f1 = exp2f(m1 - n1);
        m0 = n0;
        m1 = n1;
        float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                s[nt][e] = exp2f(s[nt][e] - n0);
                s[nt][2 + e] = exp2f(s[nt][2 + e] - n1);
                sum0 += s[nt][e];
                sum1 += s[nt][2 + e];
            }
        }
        l0 = l0 * f0 + sum0;
        l1 = l1 * f1 + sum1;
#pragma unroll
        for (int i = 0; i < HD / 8; ++i) {
            o[i][0] *= f0;
            o[i][1] *= f0;
            o[i][2] *= f1;
            o[i][3] *= f1;
        }
        unsigned p[4][4];
        as_operands(s, p);
        wait_pending<0>();
        __syncthreads();
        operands_times_tile<HD / 8>(o, p, vs, 0, lane);
        __syncthreads();  // K and V free for the next tile
    }
#pragma unroll
    for (int o2 = 1; o2 < 4; o2 <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, o2);
        l1 += __shfl_xor_sync(0xffffffffu, l1, o2);
    }
    bf16* oh = out + (b * heads + h) * (int64_t)t * HD;
    store_rows<HD / 8>(oh, o, q0 + warp * 16, 0, 1.0f / l0, 1.0f / l1, t, lane);
    if (lane % 4 == 0) {
        float* lh = lse + (b * heads + h) * (int64_t)t;
        if (row0 < t) lh[row0] = (m0 + log2f(l0)) * LN2;
        if (row1 < t) lh[row1] = (m1 + log2f(l1)) * LN2;
    }
}

// The backward kernels are written for head size 256 (training's full-attention layers).
#if HD == 256
extern "C" __global__ void __launch_bounds__(128, 1)
    flash_backward_dq_bf16(const bf16* __restrict__ q, const bf16* __restrict__ k,
                           const bf16* __restrict__ v, const bf16* __restrict__ d_out,
                           const float* __restrict__ lse, const float* __restrict__ delta,
                           bf16* __restrict__ dq, int t, int heads, int kv_heads, float scale) {
    extern __shared__ float4 shared4[];
    bf16* qs = reinterpret_cast<bf16*>(shared4);
    bf16* dos = qs + TILE_ELEMS;
    bf16* ks = dos + TILE_ELEMS;
    bf16* vs = ks + TILE_ELEMS;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, thread = threadIdx.x;
    const int tile = gridDim.x - 1 - blockIdx.x;
    const int h = blockIdx.y;
    const int64_t b = blockIdx.z;
    const int kvh = h / (heads / kv_heads);
    const int64_t qoff = (b * heads + h) * (int64_t)t;
    const bf16* kh = k + (b * kv_heads + kvh) * (int64_t)t * HD;
    const bf16* vh = v + (b * kv_heads + kvh) * (int64_t)t * HD;
    const int q0 = tile * TILE;
    load_tile(qs, q + qoff * HD, q0, t, thread, 128);
    load_tile(dos, d_out + qoff * HD, q0, t, thread, 128);
    commit();
    const float scale2 = scale * LOG2E;
    const int g = lane / 4, c = 2 * (lane % 4);
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;
    const float lse0 = row0 < t ? lse[qoff + row0] * LOG2E : INFINITY;
    const float lse1 = row1 < t ? lse[qoff + row1] * LOG2E : INFINITY;
    const float dl0 = row0 < t ? delta[qoff + row0] : 0.0f;
    const float dl1 = row1 < t ? delta[qoff + row1] : 0.0f;
    float acc[32][4];
    zero(acc);
    for (int j = 0; j <= tile; ++j) {
        const int k0 = j * TILE;
        load_tile(ks, kh, k0, t, thread, 128);
        load_tile(vs, vh, k0, t, thread, 128);
        commit();
        wait_pending<0>();
        __syncthreads();
        float s[8][4], dp[8][4];
        zero(s);
        zero(dp);
        rows_times_tile_t(s, qs, warp * 16, ks, lane);
        rows_times_tile_t(dp, dos, warp * 16, vs, lane);
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int key = k0 + nt * 8 + c + e;
                const float p0 = (j == tile && key > row0) ? 0.0f : exp2f(s[nt][e] * scale2 - lse0);
                const float p1 =
                    (j == tile && key > row1) ? 0.0f : exp2f(s[nt][2 + e] * scale2 - lse1);
                s[nt][e] = p0 * (dp[nt][e] - dl0);
                s[nt][2 + e] = p1 * (dp[nt][2 + e] - dl1);
            }
        }
        unsigned ds[4][4];
        as_operands(s, ds);
        operands_times_tile<32>(acc, ds, ks, 0, lane);
        __syncthreads();
    }
    store_rows<32>(dq + qoff * HD, acc, q0 + warp * 16, 0, scale, scale, t, lane);
}

extern "C" __global__ void __launch_bounds__(256, 1)
    flash_backward_dkdv_bf16(const bf16* __restrict__ q, const bf16* __restrict__ k,
                             const bf16* __restrict__ v, const bf16* __restrict__ d_out,
                             const float* __restrict__ lse, const float* __restrict__ delta,
                             bf16* __restrict__ dk, bf16* __restrict__ dv, int t, int heads,
                             int kv_heads, float scale) {
    extern __shared__ float4 shared4[];
    bf16* ks = reinterpret_cast<bf16*>(shared4);
    bf16* vs = ks + TILE_ELEMS;
    bf16* qs = vs + TILE_ELEMS;
    bf16* dos = qs + TILE_ELEMS;
    float* lses = reinterpret_cast<float*>(dos + TILE_ELEMS);  // TILE: log-sum-exp, log2 units
    float* deltas = lses + TILE;                                // TILE
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, thread = threadIdx.x;
    const int quarter = warp % 4, half = warp / 4;
    const int tile = blockIdx.x;
    const int kvh = blockIdx.y;
    const int64_t b = blockIdx.z;
    const int group = heads / kv_heads;
    const int tiles = (t + TILE - 1) / TILE;
    const int64_t kvoff = (b * kv_heads + kvh) * (int64_t)t;
    const int k0 = tile * TILE;
    load_tile(ks, k + kvoff * HD, k0, t, thread, 256);
    load_tile(vs, v + kvoff * HD, k0, t, thread, 256);
    commit();
    const float scale2 = scale * LOG2E;
    const int g = lane / 4, c = 2 * (lane % 4);
    const int key0 = k0 + quarter * 16 + g, key1 = key0 + 8;
    float acc_k[16][4], acc_v[16][4];
    zero(acc_k);
    zero(acc_v);
    for (int r = 0; r < group; ++r) {
        const int64_t qoff = (b * heads + kvh * group + r) * (int64_t)t;
        for (int i = tile; i < tiles; ++i) {
            const int q0 = i * TILE;
            load_tile(qs, q + qoff * HD, q0, t, thread, 256);
            load_tile(dos, d_out + qoff * HD, q0, t, thread, 256);
            commit();
            if (thread < TILE) {
                const int row = q0 + thread;
                lses[thread] = row < t ? lse[qoff + row] * LOG2E : INFINITY;
                deltas[thread] = row < t ? delta[qoff + row] : 0.0f;
            }
            wait_pending<0>();
            __syncthreads();
            // S^T and dP^T (16 keys x 64 queries), over the whole head.
            float s[8][4], dp[8][4];
            zero(s);
            zero(dp);
            rows_times_tile_t(s, ks, quarter * 16, qs, lane);
            rows_times_tile_t(dp, vs, quarter * 16, dos, lane);
#pragma unroll
            for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int col = nt * 8 + c + e;
                    const int query = q0 + col;
                    const float l = lses[col], d = deltas[col];
                    const float p0 = (i == tile && key0 > query) ? 0.0f : exp2f(s[nt][e] * scale2 - l);
                    const float p1 =
                        (i == tile && key1 > query) ? 0.0f : exp2f(s[nt][2 + e] * scale2 - l);
                    s[nt][e] = p0;
                    s[nt][2 + e] = p1;
                    dp[nt][e] = p0 * (dp[nt][e] - d);
                    dp[nt][2 + e] = p1 * (dp[nt][2 + e] - d);
                }
            }
            unsigned p[4][4], ds[4][4];
            as_operands(s, p);
            as_operands(dp, ds);
            operands_times_tile<16>(acc_v, p, dos, half * 128, lane);
            operands_times_tile<16>(acc_k, ds, qs, half * 128, lane);
            __syncthreads();
        }
    }
    store_rows<16>(dk + kvoff * HD, acc_k, k0 + quarter * 16, half * 128, scale, scale, t, lane);
    store_rows<16>(dv + kvoff * HD, acc_v, k0 + quarter * 16, half * 128, 1.0f, 1.0f, t, lane);
}
#endif  // HD == 256
