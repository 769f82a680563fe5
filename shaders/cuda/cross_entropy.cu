// Row-wise log-softmax and the cross-entropy loss built on it (cpu twins and the formulas:
// src/backend/cpu/cross_entropy.rs). x, logits [rows, v]; targets [rows] u32 (checked < v on the
// host, or the ignore index).
// Launch shape: one block of 256 threads per row (block-stride over rows: grid = min(rows,
// 65535)); a row's max and sum of exp(x - max) by trees in shared memory, so any v works.
//   log_softmax           (x, out [rows, v], rows, v)
//   log_softmax_backward  (x, g, out [rows, v], rows, v): dx_k = g_k - softmax_k sum_j g_j
//   cross_entropy_rows    (logits, targets, losses [rows], rows, v, ignore, has_ignore): each
//                         counted row's lse - logit[target], 0 for an ignored row; reduce.cu's
//                         sum_partial adds them and cross_entropy_mean divides by the count.
//   cross_entropy_mean    (total [1], out [1], count): total / count (0 when count is 0). One
//                         thread.
//   cross_entropy_backward (logits, targets, g [1], out [rows, v], rows, v, ignore, has_ignore,
//                         count): (softmax - onehot(target)) g / count on counted rows, 0 on
//                         ignored ones.

typedef unsigned long long u64;

__device__ float block_max(float v, float* shared) {
    __syncthreads();
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int s = 128; s > 0; s >>= 1) {
        if (threadIdx.x < s) shared[threadIdx.x] = fmaxf(shared[threadIdx.x], shared[threadIdx.x + s]);
        __syncthreads();
    }
    return shared[0];
}

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

// (max, log sum_j exp(x_j - max)) of one row, for every thread of the block.
__device__ float2 row_stats(const float* xr, u64 v, float* shared) {
    float m = -__int_as_float(0x7f800000);
    for (u64 j = threadIdx.x; j < v; j += blockDim.x) m = fmaxf(m, xr[j]);
    m = block_max(m, shared);
    float s = 0.0f;
    for (u64 j = threadIdx.x; j < v; j += blockDim.x) s += expf(xr[j] - m);
    s = block_sum(s, shared);
    return make_float2(m, logf(s));
}

extern "C" __global__ void log_softmax(const float* x, float* out, u64 rows, u64 v) {
    __shared__ float shared[256];
    for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * v;
        float2 st = row_stats(xr, v, shared);
        for (u64 j = threadIdx.x; j < v; j += blockDim.x) out[row * v + j] = xr[j] - st.x - st.y;
    }
}

extern "C" __global__ void log_softmax_backward(const float* x, const float* g, float* out, u64 rows, u64 v) {
    __shared__ float shared[256];
    for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * v;
        const float* gr = g + row * v;
        float2 st = row_stats(xr, v, shared);
        float gs = 0.0f;
        for (u64 j = threadIdx.x; j < v; j += blockDim.x) gs += gr[j];
        gs = block_sum(gs, shared);
        for (u64 j = threadIdx.x; j < v; j += blockDim.x) out[row * v + j] = gr[j] - expf(xr[j] - st.x - st.y) * gs;
    }
}

extern "C" __global__ void cross_entropy_rows(const float* logits, const unsigned int* targets, float* losses,
                                              u64 rows, u64 v, unsigned int ignore, unsigned int has_ignore) {
    __shared__ float shared[256];
    for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
        unsigned int t = targets[row];
        // Uniform across the block: every thread skips the row together.
        if (has_ignore && t == ignore) {
            if (threadIdx.x == 0) losses[row] = 0.0f;
            continue;
        }
        const float* xr = logits + row * v;
        float2 st = row_stats(xr, v, shared);
        if (threadIdx.x == 0) losses[row] = (st.x + st.y) - xr[t];
    }
}

extern "C" __global__ void cross_entropy_mean(const float* total, float* out, u64 count) {
    if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = count == 0 ? 0.0f : total[0] / (float)count;
}

extern "C" __global__ void cross_entropy_backward(const float* logits, const unsigned int* targets, const float* g,
                                                  float* out, u64 rows, u64 v, unsigned int ignore,
                                                  unsigned int has_ignore, u64 count) {
    __shared__ float shared[256];
    float scale = count == 0 ? 0.0f : g[0] / (float)count;
    for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
        unsigned int t = targets[row];
        float* o = out + row * v;
        if (has_ignore && t == ignore) {
            for (u64 j = threadIdx.x; j < v; j += blockDim.x) o[j] = 0.0f;
            continue;
        }
        const float* xr = logits + row * v;
        float2 st = row_stats(xr, v, shared);
        for (u64 j = threadIdx.x; j < v; j += blockDim.x) {
            float p = expf(xr[j] - st.x - st.y) * scale;
            o[j] = j == t ? p - scale : p;
        }
    }
}
