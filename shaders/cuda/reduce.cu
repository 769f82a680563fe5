// Reductions (cpu twins: src/backend/cpu/reduce.rs), deterministic: no float atomics, every sum
// in a fixed order.
//   sum_partial  (x [n], out [ceil(n / 1024)], n, square): block w sums x[w*1024 .. (w+1)*1024]
//                (squared when square = 1) into out[w]. Blocks of 256 threads, one block per 1024
//                inputs (grid.x, grid.y when more than 65535); the launcher runs it again on the
//                partials until one value is left.
//   sum_columns  (x [rows, cols], out [ceil(rows / chunk), cols], rows, cols, chunk): each output
//                row the sum of `chunk` input rows in row order. One thread per (output row,
//                column), blocks of 256, grid-stride; the launcher repeats it until one row is left.
//   expand       (x [nx], out [n], n, nx): out[i] = x[i % nx]. Blocks of 256, grid-stride.

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void sum_partial(const float* x, float* out, u64 n, unsigned int square) {
    __shared__ float partial[256];
    u64 w = (u64)blockIdx.x + (u64)blockIdx.y * gridDim.x;
    u64 base = w * 1024;
    float acc = 0.0f;
    for (int k = 0; k < 4; k++) {
        u64 i = base + k * 256 + threadIdx.x;
        if (i < n) {
            float v = x[i];
            acc += square ? v * v : v;
        }
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned int s = 128; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0 && base < n) out[w] = partial[0];
}

extern "C" __global__ void sum_columns(const float* x, float* out, u64 rows, u64 cols, u64 chunk) {
    u64 out_rows = (rows + chunk - 1) / chunk;
    GRID_STRIDE(i, out_rows * cols) {
        u64 row = i / cols;
        u64 col = i % cols;
        u64 end = min(rows, (row + 1) * chunk);
        float acc = 0.0f;
        for (u64 r = row * chunk; r < end; r++) acc += x[r * cols + col];
        out[i] = acc;
    }
}

extern "C" __global__ void expand(const float* x, float* out, u64 n, u64 nx) {
    GRID_STRIDE(i, n) { out[i] = x[i % nx]; }
}
