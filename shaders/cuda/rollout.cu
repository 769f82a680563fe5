// The planner's rollout kernels, forward only (cpu twins and formulas: src/backend/cpu/rollout.rs;
// the WGSL twin: shaders/rollout.wgsl): per-row top-k, Gumbel-max sampling and the policy's
// certainty. logits [rows, v]. One block of 256 threads per row (block-stride over rows: grid =
// min(rows, 65535)), looping over the row in stripes (column j belongs to thread j % 256), so any
// v works. Every ranking is (value descending, then index ascending), the cpu's `ranks_before`.
// No float atomics: deterministic.
//
// Compiled with --fmad=false (src/backend/cuda/module_cache.rs): sample_logits must match its cpu
// twin bit for bit, so no a * b + c may be contracted into one rounding.
//
//   top_k          (x, values [rows, k] f32, indices [rows, k] u32, rows, v, k, log_probs): each
//                  thread keeps its stripe's best k (k <= MAX_K) by insertion, then k rounds of a
//                  block argmax over the 256 list heads pick the row's best k in order. With
//                  log_probs an online (max, sum exp) pair per thread makes the values log-softmax
//                  values (the op `topk_log_softmax`).
//   sample_logits  (x [rows, n], ids [rows] u32, rows, n, seed, stream_base, counter, inv_t,
//                  greedy): ids[row] = argmax_j x * inv_t + gumbel(seed, stream_base + row,
//                  counter * n + j), or argmax_j x when greedy; the counter-based PCG stream of
//                  src/rng.rs, line by line.
//   certainty      (x, out [rows] f32, rows, v): sum_j p_j ln p_j; the max, then the two sums.

typedef unsigned long long u64;
typedef unsigned int u32;

#define WG 256
#define MAX_K 64
// The index of "no candidate": ranks after everything, -inf logits included.
#define NONE 0xffffffffu
#define NEG_BIG (-3.4028235e38f)

// ---- the counter-based stream: src/rng.rs, line by line ------------------------------------------

__device__ __forceinline__ u32 pcg_hash(u32 v) {
    u32 state = v * 747796405u + 2891336453u;
    u32 word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

__device__ __forceinline__ u32 counter_bits(u32 seed, u32 stream, u32 counter) {
    return pcg_hash(seed ^ pcg_hash(stream ^ pcg_hash(counter)));
}

// (k + 0.5) / 2^23 from the top 23 bits: exact, in (0, 1).
__device__ __forceinline__ float uniform_of_bits(u32 bits) {
    return ((float)(bits >> 9u) + 0.5f) * (1.0f / 8388608.0f);
}

// Cephes logf in the same operations as rng::portable_ln; constants as bits.
__device__ float portable_ln(float v) {
    u32 bits = __float_as_uint(v);
    int e = (int)((bits >> 23u) & 0xffu) - 126;
    float m = __uint_as_float((bits & 0x007fffffu) | 0x3f000000u);
    float t;
    if (m < __uint_as_float(0x3f3504f3u)) {
        e -= 1;
        t = m + m - 1.0f;
    } else {
        t = m - 1.0f;
    }
    float z = t * t;
    float q = __uint_as_float(0x3d9021bbu);
    q = q * t + __uint_as_float(0xbdebd1b8u);
    q = q * t + __uint_as_float(0x3def251bu);
    q = q * t + __uint_as_float(0xbdfe5d4fu);
    q = q * t + __uint_as_float(0x3e11e9bfu);
    q = q * t + __uint_as_float(0xbe2aae50u);
    q = q * t + __uint_as_float(0x3e4cceacu);
    q = q * t + __uint_as_float(0xbe7ffffcu);
    q = q * t + __uint_as_float(0x3eaaaaaau);
    float ef = (float)e;
    float y = q * t * z;
    y = y + ef * __uint_as_float(0xb95e8083u);
    y = y - 0.5f * z;
    float r = t + y;
    return r + ef * __uint_as_float(0x3f318000u);
}

__device__ __forceinline__ float gumbel_of_uniform(float u) { return -portable_ln(-portable_ln(u)); }

// ---- ranking -------------------------------------------------------------------------------------

__device__ __forceinline__ bool ranks_before(float av, u32 ai, float bv, u32 bi) {
    if (ai == NONE) return false;
    if (bi == NONE) return true;
    return av > bv || (av == bv && ai < bi);
}

// The best of the 256 candidates in tv/ti, left in slot 0 for every thread to read.
__device__ void block_best(float* tv, u32* ti) {
    __syncthreads();
    for (u32 st = WG / 2; st > 0; st >>= 1) {
        if (threadIdx.x < st && ranks_before(tv[threadIdx.x + st], ti[threadIdx.x + st], tv[threadIdx.x], ti[threadIdx.x])) {
            tv[threadIdx.x] = tv[threadIdx.x + st];
            ti[threadIdx.x] = ti[threadIdx.x + st];
        }
        __syncthreads();
    }
}

__device__ float block_max(float v, float* tv) {
    __syncthreads();
    tv[threadIdx.x] = v;
    __syncthreads();
    for (u32 st = WG / 2; st > 0; st >>= 1) {
        if (threadIdx.x < st) tv[threadIdx.x] = fmaxf(tv[threadIdx.x], tv[threadIdx.x + st]);
        __syncthreads();
    }
    return tv[0];
}

__device__ float block_sum(float v, float* tv) {
    __syncthreads();
    tv[threadIdx.x] = v;
    __syncthreads();
    for (u32 st = WG / 2; st > 0; st >>= 1) {
        if (threadIdx.x < st) tv[threadIdx.x] += tv[threadIdx.x + st];
        __syncthreads();
    }
    return tv[0];
}

// ---- top_k ---------------------------------------------------------------------------------------

extern "C" __global__ void top_k(const float* x, float* values, u32* indices, u64 rows, u64 v, u32 k,
                                 u32 log_probs) {
    __shared__ float tv[WG];
    __shared__ u32 ti[WG];
    const u32 lid = threadIdx.x;
    for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * v;
        float lv[MAX_K];
        u32 li[MAX_K];
        u32 count = 0;
        float m = NEG_BIG;
        float s = 0.0f;
        for (u64 jj = lid; jj < v; jj += WG) {
            u32 j = (u32)jj;
            float val = xr[jj];
            if (val > m) {
                s = s * expf(m - val) + 1.0f;
                m = val;
            } else {
                s += expf(val - m);
            }
            if (count == k && !ranks_before(val, j, lv[k - 1], li[k - 1])) continue;
            // Shift the worse entries down one and insert (j is larger than every index held).
            u32 at = min(count, k - 1);
            while (at > 0 && ranks_before(val, j, lv[at - 1], li[at - 1])) {
                lv[at] = lv[at - 1];
                li[at] = li[at - 1];
                at -= 1;
            }
            lv[at] = val;
            li[at] = j;
            count = min(count + 1, k);
        }
        float shift = 0.0f;
        if (log_probs) {
            float row_max = block_max(m, tv);
            float total = block_sum(s * expf(m - row_max), tv);
            shift = row_max + logf(total);
        }
        // k rounds: the best of the 256 list heads is the row's next; its owner advances.
        u32 head = 0;
        for (u32 r = 0; r < k; r++) {
            __syncthreads();
            if (head < count) {
                tv[lid] = lv[head];
                ti[lid] = li[head];
            } else {
                tv[lid] = NEG_BIG;
                ti[lid] = NONE;
            }
            block_best(tv, ti);
            u32 best = ti[0];
            if (lid == 0) {
                values[row * k + r] = tv[0] - shift;
                indices[row * k + r] = best;
            }
            if (best != NONE && best % WG == lid) head += 1;
        }
        __syncthreads();
    }
}

// ---- sample_logits -------------------------------------------------------------------------------

extern "C" __global__ void sample_logits(const float* x, u32* ids, u64 rows, u64 n, u32 seed, u32 stream_base,
                                         u32 counter, float inv_t, u32 greedy) {
    __shared__ float tv[WG];
    __shared__ u32 ti[WG];
    const u32 lid = threadIdx.x;
    for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * n;
        u32 stream = stream_base + (u32)row;
        u32 first = counter * (u32)n;
        float bv = NEG_BIG;
        u32 bi = NONE;
        for (u64 jj = lid; jj < n; jj += WG) {
            u32 j = (u32)jj;
            float score = xr[jj];
            if (!greedy) {
                float g = gumbel_of_uniform(uniform_of_bits(counter_bits(seed, stream, first + j)));
                score = score * inv_t + g;
            }
            if (ranks_before(score, j, bv, bi)) {
                bv = score;
                bi = j;
            }
        }
        __syncthreads();
        tv[lid] = bv;
        ti[lid] = bi;
        block_best(tv, ti);
        // No candidate only when every score is NaN (unspecified input): still a valid id.
        if (lid == 0) ids[row] = ti[0] == NONE ? 0u : ti[0];
        __syncthreads();
    }
}

// ---- certainty -----------------------------------------------------------------------------------

extern "C" __global__ void certainty(const float* x, float* out, u64 rows, u64 v) {
    __shared__ float tv[WG];
    const u32 lid = threadIdx.x;
    for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * v;
        float m = NEG_BIG;
        for (u64 j = lid; j < v; j += WG) m = fmaxf(m, xr[j]);
        float row_max = block_max(m, tv);
        // s = sum e_j, t = sum e_j (x_j - max); a -inf logit (e = 0) adds nothing to either.
        float s = 0.0f;
        float t = 0.0f;
        for (u64 j = lid; j < v; j += WG) {
            float dd = xr[j] - row_max;
            float e = expf(dd);
            s += e;
            if (e > 0.0f) t += e * dd;
        }
        float total = block_sum(s, tv);
        float tt = block_sum(t, tv);
        if (lid == 0) out[row] = tt / total - logf(total);
    }
}
