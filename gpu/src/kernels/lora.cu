// An unmerged LoRA adapter's delta added to a projection of a few rows (a decoding step's batch):
// out[r, n] = round(y[r, n] + round(s * sum_j low[r, j] * b[n, j])), low[r, j] = sum_k x[r, k] *
// a[j, k], where y = x w^T is the base projection (in T), a (rank, K) and b (N, rank) are the
// adapter's f32 matrices and s its scale. It is what the candle operations of
// `TrainableLora::delta` and the addition compute (x to f32, two products, the scale, rounded to
// T, added in T), in one launch instead of six, so that GRPO's rollouts decode through CUDA graphs
// with the policy's adapter applied.
//
// Every block first computes all of `low` (rows * rank dot products over K), recomputed by each
// block rather than passed through memory by a second kernel; then each thread finishes one output
// column for every row. The products are taken PAIRS at a time: each thread keeps PAIRS sums over
// its share of K, read eight values at a time (16-byte loads of x, 32-byte loads of a, all
// independent, so the loads of a slice are in flight together), and the block adds the threads'
// sums. A first version gave each product to one warp that strided K with scalar loads: every
// block then waited out hundreds of dependent loads (about 15 us a projection, more than the base
// product). K % 8 == 0 and 16-byte aligned rows (checked by the launcher); rows * rank <= LOW_MAX.

#include "common.cuh"

constexpr int LOW_MAX = 512;
constexpr int THREADS = 256;
constexpr int PAIRS = 16;

// Eight consecutive f32 values of `a` (32-byte aligned) as floats.
__device__ __forceinline__ void load8(const float* p, float (&v)[8]) {
    const float4 lo = reinterpret_cast<const float4*>(p)[0];
    const float4 hi = reinterpret_cast<const float4*>(p)[1];
    v[0] = lo.x; v[1] = lo.y; v[2] = lo.z; v[3] = lo.w;
    v[4] = hi.x; v[5] = hi.y; v[6] = hi.z; v[7] = hi.w;
}

template <typename T>
__device__ void lora_add(const T* x, int64_t x_stride, const T* y, int64_t y_stride,
                         const float* a, const float* b, T* out, int rows, int rank, int n_total,
                         int k_total, float scale) {
    __shared__ float low[LOW_MAX];
    __shared__ float partial[THREADS / 32][PAIRS];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int pairs = rows * rank;
    for (int p0 = 0; p0 < pairs; p0 += PAIRS) {
        float acc[PAIRS];
#pragma unroll
        for (int q = 0; q < PAIRS; ++q) acc[q] = 0.0f;
        for (int k = threadIdx.x * 8; k < k_total; k += THREADS * 8) {
#pragma unroll
            for (int q = 0; q < PAIRS; ++q) {
                const int p = p0 + q;
                if (p < pairs) {
                    const int r = p / rank, j = p % rank;
                    Pack<T> xs;
                    xs.load(x + r * x_stride + k);
                    float as[8];
                    load8(a + (int64_t)j * k_total + k, as);
#pragma unroll
                    for (int i = 0; i < 8; ++i) acc[q] += xs.at(i) * as[i];
                }
            }
        }
#pragma unroll
        for (int q = 0; q < PAIRS; ++q) {
            const float sum = warp_sum(acc[q]);
            if (lane == 0) partial[warp][q] = sum;
        }
        __syncthreads();
        if (threadIdx.x < PAIRS && p0 + threadIdx.x < pairs) {
            float sum = 0.0f;
#pragma unroll
            for (int w = 0; w < THREADS / 32; ++w) sum += partial[w][threadIdx.x];
            low[p0 + threadIdx.x] = sum;
        }
        __syncthreads();
    }
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
