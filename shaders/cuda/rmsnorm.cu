// RMSNorm over the last dimension (cpu twins: src/backend/cpu/rmsnorm.rs). x [rows, d], weight [d]:
//   out = x * r * w,  r = 1 / sqrt(mean(x^2) + eps)
// backward, with dot = sum_j g_j w_j x_j:
//   dx_k = r w_k g_k - r^3 (dot / d) x_k;  dweight_k = sum over rows of g_k x_k r
// Launch shape: one block of 256 threads per row (block-stride over rows: grid = min(rows, 65535)),
// the row's sums by a tree in shared memory.
//   rms_norm           (x, weight, out [rows, d], rows, d, eps)
//   rms_norm_backward  (x, weight, g, dx [rows, d], dw_part [rows, d], rows, d, eps): dw_part holds
//                      each row's g x r, which reduce.cu's sum_columns adds up in row order (no
//                      float atomics: deterministic).

typedef unsigned long long u64;

// The sum of every thread's v, returned to all threads of the block (256 threads).
__device__ float block_sum(float v, float* shared) {
    __syncthreads();
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int s = 128; s > 0; s >>= 1) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    return shared[0];
}

extern "C" __global__ void rms_norm(const float* x, const float* weight, float* out, u64 rows, u64 d, float eps) {
    __shared__ float shared[256];
    for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * d;
        float ss = 0.0f;
        for (u64 j = threadIdx.x; j < d; j += blockDim.x) ss += xr[j] * xr[j];
        ss = block_sum(ss, shared);
        float r = 1.0f / sqrtf(ss / (float)d + eps);
        for (u64 j = threadIdx.x; j < d; j += blockDim.x) out[row * d + j] = xr[j] * r * weight[j];
    }
}

extern "C" __global__ void rms_norm_backward(const float* x, const float* weight, const float* g, float* dx,
                                             float* dw_part, u64 rows, u64 d, float eps) {
    __shared__ float shared[256];
    for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * d;
        const float* gr = g + row * d;
        float ss = 0.0f;
        float dot = 0.0f;
        for (u64 j = threadIdx.x; j < d; j += blockDim.x) {
            ss += xr[j] * xr[j];
            dot += gr[j] * weight[j] * xr[j];
        }
        ss = block_sum(ss, shared);
        dot = block_sum(dot, shared);
        float r = 1.0f / sqrtf(ss / (float)d + eps);
        float c = r * r * r * (dot / (float)d);
        for (u64 k = threadIdx.x; k < d; k += blockDim.x) {
            dx[row * d + k] = r * weight[k] * gr[k] - c * xr[k];
            dw_part[row * d + k] = gr[k] * xr[k] * r;
        }
    }
}
