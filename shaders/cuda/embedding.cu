// Embedding lookup (a row gather) and its backward (a scatter-add of rows) without float atomics
// (cpu twins: src/backend/cpu/embedding.rs).
//   embedding           (ids [n] u32, table [v, d], out [n, d], n, d): one thread per output
//                       element; ids were checked < v on the host.
//   embedding_backward  (plan, g [n, d], grad [v, d] zeroed, u, d): plan = [rows: u][offsets:
//                       u + 1][positions: n], built on the host: the u distinct ids in increasing
//                       order and, for row k, the token positions positions[offsets[k] ..
//                       offsets[k + 1]] holding it, in token order. One thread per (distinct row,
//                       column) sums its tokens' gradients in token order: one writer per element,
//                       the cpu twin's order, deterministic.
// Launch shape: blocks of 256 threads, grid-stride loops (n * d, resp. u * d threads);
// grid = min(ceil(threads / 256), 65535).

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void embedding(const unsigned int* ids, const float* table, float* out, u64 n, u64 d) {
    GRID_STRIDE(i, n * d) { out[i] = table[(u64)ids[i / d] * d + i % d]; }
}

extern "C" __global__ void embedding_backward(const unsigned int* plan, const float* g, float* grad, u64 u, u64 d) {
    GRID_STRIDE(i, u * d) {
        u64 k = i / d;
        u64 j = i % d;
        const unsigned int* offsets = plan + u;
        const unsigned int* positions = plan + 2 * u + 1;
        float acc = 0.0f;
        for (unsigned int q = offsets[k]; q < offsets[k + 1]; q++) acc += g[(u64)positions[q] * d + j];
        grad[(u64)plan[k] * d + j] = acc;
    }
}
