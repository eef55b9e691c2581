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

// Eight consecutive values of T (16-byte aligned), loaded in one (bf16) or two (float) 16-byte
// loads and read back as floats.
template <typename T> struct Pack;  // 8 values of T in 16 or 32 bytes
template <> struct Pack<__nv_bfloat16> {
    uint4 raw;
    __device__ __forceinline__ void load(const __nv_bfloat16* p) { raw = *reinterpret_cast<const uint4*>(p); }
    __device__ __forceinline__ float at(int i) const {
        const __nv_bfloat16* v = reinterpret_cast<const __nv_bfloat16*>(&raw);
        return __bfloat162float(v[i]);
    }
};
template <> struct Pack<float> {
    float4 lo, hi;
    __device__ __forceinline__ void load(const float* p) {
        lo = *reinterpret_cast<const float4*>(p);
        hi = *reinterpret_cast<const float4*>(p + 4);
    }
    __device__ __forceinline__ float at(int i) const {
        const float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
        return v[i];
    }
};

// Stores eight floats as consecutive values of T (16-byte aligned), rounded.
__device__ __forceinline__ void store_pack(float* p, const float (&v)[8]) {
    reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store_pack(__nv_bfloat16* p, const float (&v)[8]) {
    uint4 raw;
    __nv_bfloat162* pairs = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) pairs[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
    *reinterpret_cast<uint4*>(p) = raw;
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
