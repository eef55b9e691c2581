// The SwiGLU activation of the MLP in one kernel (lamar's own; `Mlp::forward` in
// `src/qwen35/layers/mlp.rs`): out = round(round(silu(gate)) * up), one thread per element, rounding
// where the candle path (and transformers) round. `gate` and `up` rows are `*_stride` apart.

#include "common.cuh"

template <typename T>
__device__ void silu_mul(const T* gate, int64_t gate_stride, const T* up, int64_t up_stride,
                         T* out, int64_t rows, int cols) {
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * cols) return;
    const int64_t r = idx / cols;
    const int c = (int)(idx % cols);
    const float activated = rounded<T>(silu(to_float(gate[r * gate_stride + c])));
    out[idx] = from_float<T>(activated * to_float(up[r * up_stride + c]));
}

// Its backward, for a training pass (`train::swiglu`): with a = round(silu(gate)) and the
// output's gradient d, d_up = round(d * a) and d_gate = round(d * up * silu'(gate)), where
// silu'(g) = s (1 + g (1 - s)) with s = sigmoid(g); one pass over the three inputs instead of
// candle's eight operations. `d`, `d_gate` and `d_up` are contiguous.
template <typename T>
__device__ void silu_mul_backward(const T* gate, int64_t gate_stride, const T* up,
                                  int64_t up_stride, const T* d, T* d_gate, T* d_up, int64_t rows,
                                  int cols) {
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * cols) return;
    const int64_t r = idx / cols;
    const int c = (int)(idx % cols);
    const float g = to_float(gate[r * gate_stride + c]);
    const float u = to_float(up[r * up_stride + c]);
    const float grad = to_float(d[idx]);
    const float s = 1.0f / (1.0f + expf(-g));
    d_up[idx] = from_float<T>(grad * rounded<T>(g * s));
    d_gate[idx] = from_float<T>(grad * u * s * (1.0f + g * (1.0f - s)));
}

#define MLP_KERNELS(SUFFIX, T)                                                                    \
    extern "C" __global__ void silu_mul_##SUFFIX(const T* gate, int64_t gate_stride, const T* up, \
                                                 int64_t up_stride, T* out, int64_t rows,         \
                                                 int cols) {                                      \
        silu_mul<T>(gate, gate_stride, up, up_stride, out, rows, cols);                           \
    }                                                                                             \
    extern "C" __global__ void silu_mul_backward_##SUFFIX(                                        \
        const T* gate, int64_t gate_stride, const T* up, int64_t up_stride, const T* d,           \
        T* d_gate, T* d_up, int64_t rows, int cols) {                                             \
        silu_mul_backward<T>(gate, gate_stride, up, up_stride, d, d_gate, d_up, rows, cols);      \
    }

MLP_KERNELS(f32, float)
MLP_KERNELS(bf16, __nv_bfloat16)
