// Causal depthwise conv1d, channels last (cpu twins and the formula: src/backend/cpu/conv1d.rs).
// x [B, L, C], weight [C, K], bias [C]:
//   y[b, t, c] = bias[c] + sum_{j<K} weight[c, j] * x[b, t - (K-1) + j, c]   (x = 0 before t = 0)
//   causal_conv1d             (x, weight, bias, has_bias, y, b, l, c, k): one thread per output
//                             element (B L C), blocks of 256, grid-stride.
//   causal_conv1d_backward_x  (g, weight, dx, b, l, c, k): one thread per element of dx.
//   conv1d_param_partials     (x, g, part [chunks, K C + C], b, l, c, k, chunk): one thread per
//                             (chunk of `chunk` rows of B L, tap-major index j C + c or bias
//                             index K C + c), summing its rows in order; reduce.cu's sum_columns
//                             then adds the chunks in order (deterministic, no atomics).
//   conv1d_param_finish       (total [K C + C], dweight [C, K], dbias [C], c, k): the tap-major
//                             sums into the weight's [C, K] layout and the bias. One thread per
//                             element of K C + C.
// Launch shape: blocks of 256 threads, grid-stride loops; grid = min(ceil(threads / 256), 65535).

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void causal_conv1d(const float* x, const float* weight, const float* bias,
                                         unsigned int has_bias, float* y, u64 b, u64 l, u64 c, u64 k) {
    GRID_STRIDE(i, b * l * c) {
        u64 row = i / c;
        u64 ch = i % c;
        u64 t = row % l;
        float acc = has_bias ? bias[ch] : 0.0f;
        u64 first = (k - 1 > t) ? k - 1 - t : 0;
        for (u64 j = first; j < k; j++) acc = fmaf(weight[ch * k + j], x[(row + j - (k - 1)) * c + ch], acc);
        y[i] = acc;
    }
}

extern "C" __global__ void causal_conv1d_backward_x(const float* g, const float* weight, float* dx, u64 b, u64 l,
                                                    u64 c, u64 k) {
    GRID_STRIDE(i, b * l * c) {
        u64 row = i / c;
        u64 ch = i % c;
        u64 s = row % l;
        float acc = 0.0f;
        u64 first = (s + k > l) ? s + k - l : 0;
        for (u64 j = first; j < k; j++) acc = fmaf(weight[ch * k + j], g[(row + (k - 1) - j) * c + ch], acc);
        dx[i] = acc;
    }
}

extern "C" __global__ void conv1d_param_partials(const float* x, const float* g, float* part, u64 b, u64 l, u64 c,
                                                 u64 k, u64 chunk) {
    u64 width = k * c + c;
    u64 rows = b * l;
    u64 chunks = (rows + chunk - 1) / chunk;
    GRID_STRIDE(i, chunks * width) {
        u64 q = i / width;
        u64 idx = i % width;
        u64 end = min(rows, (q + 1) * chunk);
        float acc = 0.0f;
        if (idx < k * c) {
            u64 j = idx / c;
            u64 ch = idx % c;
            for (u64 row = q * chunk; row < end; row++) {
                if (row % l + j >= k - 1) acc += g[row * c + ch] * x[(row + j - (k - 1)) * c + ch];
            }
        } else {
            u64 ch = idx - k * c;
            for (u64 row = q * chunk; row < end; row++) acc += g[row * c + ch];
        }
        part[i] = acc;
    }
}

extern "C" __global__ void conv1d_param_finish(const float* total, float* dweight, float* dbias, u64 c, u64 k) {
    GRID_STRIDE(i, k * c + c) {
        if (i < k * c) {
            u64 j = i / c;
            u64 ch = i % c;
            dweight[ch * k + j] = total[i];
        } else {
            dbias[i - k * c] = total[i];
        }
    }
}
