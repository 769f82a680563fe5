// Elementwise unary ops and the backward passes of silu and softplus (cpu twins:
// src/backend/cpu/unary.rs). Entry points carry the ops' names; `exp` is `exp_forward`, as in
// shaders/unary.wgsl, so it cannot be mistaken for the math function.
// Launch shape: blocks of 256 threads, grid-stride loops over n; grid = min(ceil(n / 256), 65535).
//   silu, softplus, exp_forward   (x [n], out [n], n)
//   scale                         (x [n], out [n], n, c)
//   silu_backward, softplus_backward   (x [n], g [n], out [n], n)

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

// log(1 + e^v) = max(v, 0) + log1p(e^-|v|), linear past 20 (PyTorch's threshold).
__device__ __forceinline__ float softplus_scalar(float v) {
    if (v > 20.0f) return v;
    return fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v)));
}

extern "C" __global__ void silu(const float* x, float* out, u64 n) {
    GRID_STRIDE(i, n) { out[i] = x[i] * sigmoid(x[i]); }
}

extern "C" __global__ void softplus(const float* x, float* out, u64 n) {
    GRID_STRIDE(i, n) { out[i] = softplus_scalar(x[i]); }
}

extern "C" __global__ void exp_forward(const float* x, float* out, u64 n) {
    GRID_STRIDE(i, n) { out[i] = expf(x[i]); }
}

extern "C" __global__ void scale(const float* x, float* out, u64 n, float c) {
    GRID_STRIDE(i, n) { out[i] = x[i] * c; }
}

// d silu/dx = s + x s (1 - s), s = sigmoid(x).
extern "C" __global__ void silu_backward(const float* x, const float* g, float* out, u64 n) {
    GRID_STRIDE(i, n) {
        float s = sigmoid(x[i]);
        out[i] = g[i] * (s + x[i] * s * (1.0f - s));
    }
}

// d softplus/dx = sigmoid(x).
extern "C" __global__ void softplus_backward(const float* x, const float* g, float* out, u64 n) {
    GRID_STRIDE(i, n) { out[i] = g[i] * sigmoid(x[i]); }
}
