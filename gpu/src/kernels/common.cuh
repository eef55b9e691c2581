// Helpers shared by lamar's kernels: dtype conversion, rounding as the model's dtype would hold
// a value, warp and block sums.
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
    return __float2bfloat16(x);
}

// `x` as the model's dtype would hold it.
template <typename T> __device__ __forceinline__ float rounded(float x) {
    return to_float(from_float<T>(x));
}

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

__device__ __forceinline__ float warp_sum(float x) {
    for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

// The sum of `x` over the block (blockDim.x a multiple of 32, at most 1024), on every thread.
__device__ __forceinline__ float block_sum(float x) {
    __shared__ float partial[32];
    __shared__ float total;
    x = warp_sum(x);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    if (lane == 0) partial[warp] = x;
    __syncthreads();
    if (warp == 0) {
        x = warp_sum(lane < warps ? partial[lane] : 0.0f);
        if (lane == 0) total = x;
    }
    __syncthreads();
    return total;
}
