// The GRU cell's gates, fused (cpu twins and the formulas: src/backend/cpu/gru.rs). gi, gh [B, 3H]
// (gate blocks r, z, n in nn.GRUCell's order, biases added), h [B, H]:
//   r = sigmoid(gi_r + gh_r)   z = sigmoid(gi_z + gh_z)   n = tanh(gi_n + r * gh_n)
//   h' = (1 - z) * n + z * h
// Launch shape: one thread per (row b, unit j), blocks of 256, grid-stride over B * H;
// grid = min(ceil(B * H / 256), 65535).
//   gru_gates           (gi, gh, h, out [B, H], batch, hidden)
//   gru_gates_backward  (gi, gh, h, g [B, H], dgi [B, 3H], dgh [B, 3H], dh [B, H], batch, hidden)

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

extern "C" __global__ void gru_gates(const float* gi, const float* gh, const float* h, float* out, u64 batch,
                                     u64 hidden) {
    GRID_STRIDE(i, batch * hidden) {
        u64 b = i / hidden;
        u64 j = i % hidden;
        const float* gib = gi + b * 3 * hidden;
        const float* ghb = gh + b * 3 * hidden;
        float r = sigmoid(gib[j] + ghb[j]);
        float z = sigmoid(gib[hidden + j] + ghb[hidden + j]);
        float n = tanhf(gib[2 * hidden + j] + r * ghb[2 * hidden + j]);
        out[i] = (1.0f - z) * n + z * h[i];
    }
}

extern "C" __global__ void gru_gates_backward(const float* gi, const float* gh, const float* h, const float* g,
                                              float* dgi, float* dgh, float* dh, u64 batch, u64 hidden) {
    GRID_STRIDE(i, batch * hidden) {
        u64 b = i / hidden;
        u64 j = i % hidden;
        u64 row = b * 3 * hidden;
        const float* gib = gi + row;
        const float* ghb = gh + row;
        float r = sigmoid(gib[j] + ghb[j]);
        float z = sigmoid(gib[hidden + j] + ghb[hidden + j]);
        float n = tanhf(gib[2 * hidden + j] + r * ghb[2 * hidden + j]);
        float gj = g[i];
        float dn_pre = gj * (1.0f - z) * (1.0f - n * n);
        float dr_pre = dn_pre * ghb[2 * hidden + j] * r * (1.0f - r);
        float dz_pre = gj * (h[i] - n) * z * (1.0f - z);
        dgi[row + j] = dr_pre;
        dgi[row + hidden + j] = dz_pre;
        dgi[row + 2 * hidden + j] = dn_pre;
        dgh[row + j] = dr_pre;
        dgh[row + hidden + j] = dz_pre;
        dgh[row + 2 * hidden + j] = dn_pre * r;
        dh[i] = gj * z;
    }
}
