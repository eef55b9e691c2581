// The optimiser step of training in two kernels (lamar's own; `train::optim` holds the candle
// reference, the CPU path and PyTorch's definitions):
//
// * sum_squares: Σ x² of one f32 tensor added into a double on the device, so that the global
//   gradient norm of every adapter tensor costs one read of each and a single transfer to the
//   host (instead of a reduction, a copy and a wait per tensor). Each thread sums in double;
//   the block's sum is added atomically.
// * adamw: one AdamW update of one f32 tensor in place, as torch.optim.AdamW does it, with the
//   clipping factor folded in (the gradient is scaled as clip_grad_norm_ scales it in place):
//     g = grad · grad_scale
//     p ← p · (1 − lr·λ)
//     m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²
//     p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
//   one thread per element, four elements a thread where the tensor allows.

#include "common.cuh"

extern "C" __global__ void sum_squares_f32(const float* x, int64_t n, double* out) {
    double sum = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const double v = x[i];
        sum += v * v;
    }
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, offset);
    __shared__ double warps[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warps[warp] = sum;
    __syncthreads();
    if (warp == 0) {
        sum = lane < (int)(blockDim.x >> 5) ? warps[lane] : 0.0;
        for (int offset = 16; offset > 0; offset >>= 1)
            sum += __shfl_xor_sync(0xffffffff, sum, offset);
        if (lane == 0) atomicAdd(out, sum);
    }
}

// The step's constants, as the launcher computes them in double and rounds once.
struct AdamWStep {
    float grad_scale, beta1, beta2, eps, decay, step_size, correction2_sqrt;
};

__device__ __forceinline__ void adamw_one(float& p, float g, float& m, float& v, const AdamWStep& s) {
    g *= s.grad_scale;
    p *= s.decay;
    m = s.beta1 * m + (1.0f - s.beta1) * g;
    v = s.beta2 * v + (1.0f - s.beta2) * g * g;
    p -= s.step_size * (m / (sqrtf(v) / s.correction2_sqrt + s.eps));
}

extern "C" __global__ void adamw_f32(float* param, const float* grad, float* m, float* v,
                                     int64_t n, float grad_scale, float beta1, float beta2,
                                     float eps, float decay, float step_size,
                                     float correction2_sqrt) {
    const AdamWStep s{grad_scale, beta1, beta2, eps, decay, step_size, correction2_sqrt};
    const int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (i + 3 < n && (n & 3) == 0) {
        float4 p4 = *reinterpret_cast<float4*>(param + i);
        const float4 g4 = *reinterpret_cast<const float4*>(grad + i);
        float4 m4 = *reinterpret_cast<float4*>(m + i);
        float4 v4 = *reinterpret_cast<float4*>(v + i);
        adamw_one(p4.x, g4.x, m4.x, v4.x, s);
        adamw_one(p4.y, g4.y, m4.y, v4.y, s);
        adamw_one(p4.z, g4.z, m4.z, v4.z, s);
        adamw_one(p4.w, g4.w, m4.w, v4.w, s);
        *reinterpret_cast<float4*>(param + i) = p4;
        *reinterpret_cast<float4*>(m + i) = m4;
        *reinterpret_cast<float4*>(v + i) = v4;
        return;
    }
    for (int64_t k = i; k < i + 4 && k < n; ++k) adamw_one(param[k], grad[k], m[k], v[k], s);
}
