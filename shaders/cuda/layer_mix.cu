// Hierarchical policy fusion: a softmax-weighted sum of the layers' outputs (cpu twins and the
// formulas: src/backend/cpu/layer_mix.rs). xs [layers, m], logits [layers]; s = softmax(logits).
//   layer_mix           (xs, logits, out [m], layers, m): out[n] = sum_i s_i xs[i, n]. One thread
//                       per n (each computes the small softmax itself), blocks of 256, grid-stride.
//   layer_mix_dxs       (logits, g [m], dxs [layers, m], layers, m): dxs[i, n] = s_i g[n]. One
//                       thread per element, blocks of 256, grid-stride.
//   layer_mix_dots      (xs, g, dots [layers], layers, m): dots_i = <g, xs_i>. One block of 256 per
//                       layer (block-stride), a tree sum in shared memory.
//   layer_mix_dlogits   (logits, dots, dlogits [layers], layers): dlogits_i = s_i (dots_i - sum_j
//                       s_j dots_j). One block of one thread.

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

__device__ float logits_max(const float* logits, u64 layers) {
    float mx = -__int_as_float(0x7f800000);
    for (u64 i = 0; i < layers; i++) mx = fmaxf(mx, logits[i]);
    return mx;
}

__device__ float exp_total(const float* logits, u64 layers, float mx) {
    float total = 0.0f;
    for (u64 i = 0; i < layers; i++) total += expf(logits[i] - mx);
    return total;
}

extern "C" __global__ void layer_mix(const float* xs, const float* logits, float* out, u64 layers, u64 m) {
    GRID_STRIDE(n, m) {
        float mx = logits_max(logits, layers);
        float total = exp_total(logits, layers, mx);
        float acc = 0.0f;
        for (u64 i = 0; i < layers; i++) acc += expf(logits[i] - mx) / total * xs[i * m + n];
        out[n] = acc;
    }
}

extern "C" __global__ void layer_mix_dxs(const float* logits, const float* g, float* dxs, u64 layers, u64 m) {
    GRID_STRIDE(idx, layers * m) {
        float mx = logits_max(logits, layers);
        float total = exp_total(logits, layers, mx);
        u64 i = idx / m;
        dxs[idx] = expf(logits[i] - mx) / total * g[idx % m];
    }
}

extern "C" __global__ void layer_mix_dots(const float* xs, const float* g, float* dots, u64 layers, u64 m) {
    __shared__ float shared[256];
    for (u64 i = blockIdx.x; i < layers; i += gridDim.x) {
        float acc = 0.0f;
        for (u64 n = threadIdx.x; n < m; n += blockDim.x) acc += g[n] * xs[i * m + n];
        shared[threadIdx.x] = acc;
        __syncthreads();
        for (unsigned int s = 128; s > 0; s >>= 1) {
            if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
            __syncthreads();
        }
        if (threadIdx.x == 0) dots[i] = shared[0];
        __syncthreads();
    }
}

extern "C" __global__ void layer_mix_dlogits(const float* logits, const float* dots, float* dlogits, u64 layers) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    float mx = logits_max(logits, layers);
    float total = exp_total(logits, layers, mx);
    float mean = 0.0f;
    for (u64 i = 0; i < layers; i++) mean += expf(logits[i] - mx) / total * dots[i];
    for (u64 i = 0; i < layers; i++) dlogits[i] = expf(logits[i] - mx) / total * (dots[i] - mean);
}
