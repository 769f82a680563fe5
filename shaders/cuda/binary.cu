// Elementwise binary ops with b repeated over a's leading dimensions: out[i] = a[i] (op) b[i % nb]
// (the cpu twins: src/backend/cpu/binary.rs), and acc += x in place.
// Launch shape: blocks of 256 threads, grid-stride loops over the n elements; grid = min(ceil(n /
// 256), 65535) blocks (src/backend/cuda/context.rs `elementwise_grid`).
//   add, mul     (a [n], b [nb], out [n], n, nb)
//   add_assign   (acc [n], x [n], n)

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void add(const float* a, const float* b, float* out, u64 n, u64 nb) {
    GRID_STRIDE(i, n) { out[i] = a[i] + b[i % nb]; }
}

extern "C" __global__ void mul(const float* a, const float* b, float* out, u64 n, u64 nb) {
    GRID_STRIDE(i, n) { out[i] = a[i] * b[i % nb]; }
}

extern "C" __global__ void add_assign(float* acc, const float* x, u64 n) {
    GRID_STRIDE(i, n) { acc[i] += x[i]; }
}
