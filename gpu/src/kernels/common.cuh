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

// Programmatic dependent launch (Hopper and later; no-ops before): a kernel launched with
// overlap allowed (`launch::launch_overlapping`) may start while the kernel before it on the
// stream is still running; it must call `wait_for_previous_kernel()` before it reads anything
// that kernel wrote or writes anything at all. A kernel that calls `allow_next_kernel()` lets
// such a successor start once all of its own blocks are running.
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}
