// One decoding step of a Gated DeltaNet layer (Qwen3.5's linear-attention mixer) in three
// kernels, for a batch of rows with one new token each. Written for lamar; the math is the one of
// `GatedDeltaNet::forward` in `src/qwen35/layers/deltanet.rs` (which also runs on the CPU and is pinned to
// transformers by the parity tests):
//
//   1. `deltanet_conv_*`: the short causal depthwise convolution over [history, x] per channel,
//      then SiLU; the history (B, kernel - 1, channels) is shifted in place.
//   2. `deltanet_delta_*`: per (row, value head, tile of 32 value columns): L2 norms of the
//      query and key (the query also scaled by 1/sqrt(dk)), beta = sigmoid(b), the decay
//      exp(-exp(A_log) * softplus(a + dt_bias)), and the delta rule on the state (B, nv, dk, dv)
//      in place: S <- decay S; S <- S + k (beta (v - S^T k))^T; o = S^T q.
//   3. `deltanet_gated_norm_*`: RMSNorm of o per value head times the norm weight, rounded to
//      the model's dtype, times SiLU(z), rounded again.
//
// Prefill (many tokens per row) uses `deltanet_conv_prefill_*` for the convolution and the same
// gated norm; its delta rule is the chunked form (`deltanet_chunks.cu`).
//
// `T` is the model's dtype (float or bfloat16); the state, the gates and every sum are float.
// Rounding points follow the candle path: the convolution output and its SiLU are rounded to T.

#include "common.cuh"

// One thread per (row, channel). `x` rows are `x_stride` apart; `weight` is (channels, kernel).
template <typename T>
__device__ void conv_step(const T* x, int64_t x_stride, T* history, const T* weight, float* out,
                          int rows, int channels, int kernel) {
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (int64_t)rows * channels) return;
    const int64_t b = idx / channels;
    const int c = (int)(idx % channels);
    T* h = history + b * (kernel - 1) * channels + c;
    const T* w = weight + (int64_t)c * kernel;
    const T newest = x[b * x_stride + c];
    float acc = to_float(w[kernel - 1]) * to_float(newest);
    for (int j = 0; j < kernel - 1; ++j) acc += to_float(w[j]) * to_float(h[(int64_t)j * channels]);
    for (int j = 0; j + 1 < kernel - 1; ++j) h[(int64_t)j * channels] = h[(int64_t)(j + 1) * channels];
    h[(int64_t)(kernel - 2) * channels] = newest;
    out[idx] = rounded<T>(silu(rounded<T>(acc)));
}

// Prefill: the same convolution and SiLU for `tokens` new inputs per row, one thread per (row,
// token, channel): out = round(silu(round(sum_j w[j] * [history, x][t + j]))). Rows of `x` (all
// tokens of all rows) are `x_stride` apart; `history` (B, kernel - 1, channels) is only read (the
// caller keeps the last kernel - 1 inputs); `out` is (B, tokens, channels). Grid (channel
// blocks, any number of (row, token) lines, taken in strides).
template <typename T>
__device__ void conv_prefill(const T* x, int64_t x_stride, const T* history, const T* weight,
                             T* out, int rows, int tokens, int channels, int kernel) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels) return;
    const T* w = weight + (int64_t)c * kernel;
    for (int line = blockIdx.y; line < rows * tokens; line += gridDim.y) {
        const int b = line / tokens, t = line % tokens;
        float acc = 0.0f;
        for (int j = 0; j < kernel; ++j) {
            const int from = t + j - (kernel - 1);  // the input's token; negative: the history
            const T v = from >= 0
                            ? x[((int64_t)b * tokens + from) * x_stride + c]
                            : history[((int64_t)b * (kernel - 1) + from + kernel - 1) * channels + c];
            acc += to_float(w[j]) * to_float(v);
        }
        out[(int64_t)line * channels + c] = from_float<T>(silu(rounded<T>(acc)));
    }
}

// The gradient of `conv_prefill`'s input x for the gradient `dy` (B, tokens, channels) of its
// output, in training: with s[t] = round(sum_j w[j] * [history, x][t + j]) (recomputed) and
// ds[t] = dy[t] * silu'(s[t]), dx[u] = sum_j w[j] * ds[u + kernel - 1 - j] over the tokens
// t = u + kernel - 1 - j that exist. The history gets no gradient (the caller runs this only
// for an untracked history) and the weight none (frozen). Same grid as `conv_prefill`; `dx`
// is (B, tokens, channels), contiguous like `dy`.
template <typename T>
__device__ void conv_prefill_backward(const T* x, int64_t x_stride, const T* history,
                                      const T* weight, const T* dy, T* dx, int rows, int tokens,
                                      int channels, int kernel) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels) return;
    const T* w = weight + (int64_t)c * kernel;
    for (int line = blockIdx.y; line < rows * tokens; line += gridDim.y) {
        const int b = line / tokens, u = line % tokens;
        float acc = 0.0f;
        for (int j = 0; j < kernel; ++j) {
            const int t = u + kernel - 1 - j;  // an output that read x[u] through w[j]
            if (t >= tokens) continue;
            float pre = 0.0f;
            for (int i = 0; i < kernel; ++i) {
                const int from = t + i - (kernel - 1);
                const T v = from >= 0
                                ? x[((int64_t)b * tokens + from) * x_stride + c]
                                : history[((int64_t)b * (kernel - 1) + from + kernel - 1) * channels + c];
                pre += to_float(w[i]) * to_float(v);
            }
            const float s = rounded<T>(pre);
            const float sig = 1.0f / (1.0f + expf(-s));
            const float ds = to_float(dy[((int64_t)b * tokens + t) * channels + c]) * sig *
                             (1.0f + s * (1.0f - sig));
            acc += to_float(w[j]) * ds;
        }
        dx[(int64_t)line * channels + c] = from_float<T>(acc);
    }
}

// Grid (ceil(dv / 32), nv, rows), 32 threads; shared memory 2 * dk floats.
template <typename T>
__device__ void delta_step(const float* mixed, int channels, const T* beta_in, int64_t beta_stride,
                           const T* a_in, int64_t a_stride, const float* neg_a,
                           const float* dt_bias, float* state, float* out, int nk, int nv, int dk,
                           int dv, float q_factor) {
    extern __shared__ float shared[];
    float* q = shared;
    float* k = shared + dk;
    const int lane = threadIdx.x;
    const int h = blockIdx.y;
    const int64_t b = blockIdx.z;
    const int key_head = h / (nv / nk);
    const float* row = mixed + b * channels;
    float q_sq = 0.0f, k_sq = 0.0f;
    for (int i = lane; i < dk; i += 32) {
        const float qv = row[key_head * dk + i];
        const float kv = row[nk * dk + key_head * dk + i];
        q[i] = qv;
        k[i] = kv;
        q_sq += qv * qv;
        k_sq += kv * kv;
    }
    q_sq = warp_sum(q_sq);
    k_sq = warp_sum(k_sq);
    __syncwarp();
    const float q_norm = q_factor * rsqrtf(q_sq + 1e-6f);
    const float k_norm = rsqrtf(k_sq + 1e-6f);
    const float beta = 1.0f / (1.0f + expf(-to_float(beta_in[b * beta_stride + h])));
    const float a = to_float(a_in[b * a_stride + h]) + dt_bias[h];
    const float softplus = fmaxf(a, 0.0f) + log1pf(expf(-fabsf(a)));
    const float decay = expf(softplus * neg_a[h]);
    const int j = blockIdx.x * 32 + lane;
    if (j >= dv) return;
    float* s = state + ((b * nv + h) * dk) * dv + j;
    float remembered = 0.0f;
#pragma unroll 8
    for (int i = 0; i < dk; ++i) remembered += k[i] * s[(int64_t)i * dv];
    remembered *= k_norm * decay;
    const float delta = beta * (row[2 * nk * dk + h * dv + j] - remembered) * k_norm;
    float o = 0.0f;
#pragma unroll 8
    for (int i = 0; i < dk; ++i) {
        const float updated = s[(int64_t)i * dv] * decay + k[i] * delta;
        s[(int64_t)i * dv] = updated;
        o += q[i] * updated;
    }
    out[(b * nv + h) * dv + j] = o * q_norm;
}

// The same step for key heads of exactly DK = 32 * WARPS dimensions, with the state held in
// registers: block (32, WARPS); warp w keeps rows [32w, 32w + 32) of the tile's 32 columns, so
// the state is read once and written once (the general kernel above reads it twice), and the
// two sums over rows are finished in shared memory.
template <typename T, int WARPS>
__device__ void delta_step_fixed(const float* mixed, int channels, const T* beta_in,
                                 int64_t beta_stride, const T* a_in, int64_t a_stride,
                                 const float* neg_a, const float* dt_bias, float* state, float* out,
                                 int nk, int nv, int dv, float q_factor) {
    constexpr int DK = 32 * WARPS;
    __shared__ float q[DK];
    __shared__ float k[DK];
    __shared__ float norms[2];
    __shared__ float partial[WARPS][32];
    const int lane = threadIdx.x, warp = threadIdx.y;
    const int h = blockIdx.y;
    const int64_t b = blockIdx.z;
    const int key_head = h / (nv / nk);
    const float* row = mixed + b * channels;
    // Warp w loads rows [32w, 32w + 32) of the query and key; the squared norms go through
    // `partial`.
    const int i0 = warp * 32 + lane;
    const float qv = row[key_head * DK + i0];
    const float kv = row[nk * DK + key_head * DK + i0];
    q[i0] = qv;
    k[i0] = kv;
    const float q_sq = warp_sum(qv * qv), k_sq = warp_sum(kv * kv);
    if (lane == 0) {
        partial[warp][0] = q_sq;
        partial[warp][1] = k_sq;
    }
    __syncthreads();
    if (warp == 0 && lane < 2) {
        float total = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) total += partial[w][lane];
        norms[lane] = total;
    }
    __syncthreads();
    const float q_norm = q_factor * rsqrtf(norms[0] + 1e-6f);
    const float k_norm = rsqrtf(norms[1] + 1e-6f);
    const float beta = 1.0f / (1.0f + expf(-to_float(beta_in[b * beta_stride + h])));
    const float a = to_float(a_in[b * a_stride + h]) + dt_bias[h];
    const float softplus = fmaxf(a, 0.0f) + log1pf(expf(-fabsf(a)));
    const float decay = expf(softplus * neg_a[h]);
    const int j = blockIdx.x * 32 + lane;
    const bool live = j < dv;
    float* s = state + ((b * nv + h) * DK + warp * 32) * dv + j;
    float column[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) column[i] = live ? s[(int64_t)i * dv] : 0.0f;
    float remembered = 0.0f;
#pragma unroll
    for (int i = 0; i < 32; ++i) remembered += k[warp * 32 + i] * column[i];
    __syncthreads();  // `partial` is reused
    partial[warp][lane] = remembered;
    __syncthreads();
    remembered = 0.0f;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) remembered += partial[w][lane];
    remembered *= k_norm * decay;
    const float v = live ? row[2 * nk * DK + h * dv + j] : 0.0f;
    const float delta = beta * (v - remembered) * k_norm;
    float o = 0.0f;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
        const float updated = column[i] * decay + k[warp * 32 + i] * delta;
        if (live) s[(int64_t)i * dv] = updated;
        o += q[warp * 32 + i] * updated;
    }
    __syncthreads();
    partial[warp][lane] = o;
    __syncthreads();
    if (warp == 0 && live) {
        o = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) o += partial[w][lane];
        out[(b * nv + h) * dv + j] = o * q_norm;
    }
}

// Grid (nv, rows), a multiple of 32 threads.
template <typename T>
__device__ void gated_norm(const float* o, const T* z, int64_t z_stride, const float* weight,
                           T* out, int nv, int dv, float eps) {
    const int h = blockIdx.x;
    const int64_t b = blockIdx.y;
    const float* x = o + (b * nv + h) * dv;
    if (dv <= blockDim.x) {
        // A value per thread (decoding's 128): every load issued before the sum.
        const int j = threadIdx.x;
        const bool live = j < dv;
        const float xj = live ? x[j] : 0.0f;
        const float wj = live ? weight[j] : 0.0f;
        const float gate = live ? to_float(z[b * z_stride + h * dv + j]) : 0.0f;
        const float scale = rsqrtf(block_sum(xj * xj) / dv + eps);
        if (live) {
            const float normed = rounded<T>(xj * scale * wj);
            out[b * nv * dv + h * dv + j] = from_float<T>(normed * silu(gate));
        }
        return;
    }
    float sq = 0.0f;
    for (int j = threadIdx.x; j < dv; j += blockDim.x) sq += x[j] * x[j];
    const float scale = rsqrtf(block_sum(sq) / dv + eps);
    for (int j = threadIdx.x; j < dv; j += blockDim.x) {
        const float normed = rounded<T>(x[j] * scale * weight[j]);
        const float gate = to_float(z[b * z_stride + h * dv + j]);
        out[b * nv * dv + h * dv + j] = from_float<T>(normed * silu(gate));
    }
}

// The gradients of `gated_norm` in training, for the gradient `dy` (rows, nv * dv) of its
// output (contiguous): with r = 1 / sqrt(mean(o^2) + eps), n = round(o * r * w) and
// out = n * silu(z),
//   dz = dy * n * silu'(z),   dn = dy * silu(z),
//   do = r * w * dn - o * r^3 / dv * sum_k(w_k * dn_k * o_k)
// (dn kept in float). `d_o` is f32 like `o`, `dz` (rows, nv * dv) in T, both contiguous; the
// norm weight is frozen and gets none. Grid (nv, rows), dv <= blockDim.x (a multiple of 32).
template <typename T>
__device__ void gated_norm_backward(const float* o, const T* z, int64_t z_stride,
                                    const float* weight, const T* dy, float* d_o, T* dz, int nv,
                                    int dv, float eps) {
    const int h = blockIdx.x;
    const int64_t b = blockIdx.y;
    const int j = threadIdx.x;
    const bool live = j < dv;
    const int64_t at = (b * nv + h) * dv + j;
    const float xj = live ? o[at] : 0.0f;
    const float wj = live ? weight[j] : 0.0f;
    const float gate = live ? to_float(z[b * z_stride + h * dv + j]) : 0.0f;
    const float g = live ? to_float(dy[at]) : 0.0f;
    const float r = rsqrtf(block_sum(xj * xj) / dv + eps);
    const float normed = rounded<T>(xj * r * wj);
    const float sig = 1.0f / (1.0f + expf(-gate));
    const float dn = g * gate * sig;
    const float dot = block_sum(wj * dn * xj);
    if (live) {
        dz[at] = from_float<T>(g * normed * sig * (1.0f + gate * (1.0f - sig)));
        d_o[at] = r * wj * dn - xj * r * r * r / dv * dot;
    }
}

#define DELTANET_KERNELS(SUFFIX, T)                                                               \
    extern "C" __global__ void deltanet_conv_##SUFFIX(const T* x, int64_t x_stride, T* history,   \
                                                      const T* weight, float* out, int rows,     \
                                                      int channels, int kernel) {                \
        conv_step<T>(x, x_stride, history, weight, out, rows, channels, kernel);                 \
    }                                                                                             \
    extern "C" __global__ void deltanet_conv_prefill_##SUFFIX(                                    \
        const T* x, int64_t x_stride, const T* history, const T* weight, T* out, int rows,        \
        int tokens, int channels, int kernel) {                                                   \
        conv_prefill<T>(x, x_stride, history, weight, out, rows, tokens, channels, kernel);       \
    }                                                                                             \
    extern "C" __global__ void deltanet_conv_prefill_backward_##SUFFIX(                           \
        const T* x, int64_t x_stride, const T* history, const T* weight, const T* dy, T* dx,      \
        int rows, int tokens, int channels, int kernel) {                                         \
        conv_prefill_backward<T>(x, x_stride, history, weight, dy, dx, rows, tokens, channels,    \
                                 kernel);                                                         \
    }                                                                                             \
    extern "C" __global__ void deltanet_delta_##SUFFIX(                                           \
        const float* mixed, int channels, const T* beta_in, int64_t beta_stride, const T* a_in,  \
        int64_t a_stride, const float* neg_a, const float* dt_bias, float* state, float* out,     \
        int nk, int nv, int dk, int dv, float q_factor) {                                         \
        delta_step<T>(mixed, channels, beta_in, beta_stride, a_in, a_stride, neg_a, dt_bias,     \
                      state, out, nk, nv, dk, dv, q_factor);                                      \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(128) deltanet_delta128_##SUFFIX(                 \
        const float* mixed, int channels, const T* beta_in, int64_t beta_stride, const T* a_in,  \
        int64_t a_stride, const float* neg_a, const float* dt_bias, float* state, float* out,     \
        int nk, int nv, int dv, float q_factor) {                                                 \
        delta_step_fixed<T, 4>(mixed, channels, beta_in, beta_stride, a_in, a_stride, neg_a,   \
                                 dt_bias, state, out, nk, nv, dv, q_factor);                     \
    }                                                                                             \
    extern "C" __global__ void deltanet_gated_norm_##SUFFIX(const float* o, const T* z,           \
                                                            int64_t z_stride,                     \
                                                            const float* weight, T* out, int nv,  \
                                                            int dv, float eps) {                  \
        gated_norm<T>(o, z, z_stride, weight, out, nv, dv, eps);                                  \
    }                                                                                             \
    extern "C" __global__ void deltanet_gated_norm_backward_##SUFFIX(                             \
        const float* o, const T* z, int64_t z_stride, const float* weight, const T* dy,          \
        float* d_o, T* dz, int nv, int dv, float eps) {                                           \
        gated_norm_backward<T>(o, z, z_stride, weight, dy, d_o, dz, nv, dv, eps);                \
    }

DELTANET_KERNELS(f32, float)
DELTANET_KERNELS(bf16, __nv_bfloat16)
