// Selective scan (Mamba-1's S6 recurrence), forward and backward: the design of shaders/scan.wgsl
// (the math: src/ops/scan.rs; cpu twins: src/backend/cpu/scan.rs), with the same chunked
// recompute: the forward saves the state before every CHUNK steps, the backward recomputes a
// chunk's states from it (as mamba-ssm's backward does) and walks the chunk backwards.
//
// Shapes: u, delta, z, y, gy, du, ddelta, dz: [B, L, E]; a: [E, N]; b, c: [B, L, N]; d: [E];
// h0, last, dh0: [B, E, N]; saved: [B, NC, E, N], NC = ceil(L / CHUNK). N <= 256 (MAX_STATE).
// flags bit 0: z given; bit 1: h0 given; bit 2: write saved. Absent z / h0 / saved point at a
// one-element placeholder that is never touched (flags).
//
// selective_scan  (u, delta, a, b, c, d, z, h0, y, last, saved, batch, len, chan, state, n_chunks,
//                 flags): one thread per (b, e) walking time with its N states in registers /
//                 local memory. Launch: blocks of 64 threads, grid-stride over B * E;
//                 grid = min(ceil(B E / 64), 65535).
// selective_scan_backward  (u, delta, a, b, c, d, z, saved, gy, du, ddelta, dz, dh0, db_part,
//                 dc_part, da_part, dd_part, batch, len, chan, state, n_chunks, flags, groups,
//                 per_group): one thread per (b, e, n); a block of 256 threads holds per_group =
//                 256 / N channels with all their states, groups = ceil(E / per_group) blocks per
//                 batch element. Launch: blocks of 256, block-stride over B * groups blocks;
//                 grid = min(B * groups, 65535). Each step the sums over n (ddelta, du, C.h for
//                 dz) and over the block's channels (dB, dC) go through shared memory, double-
//                 buffered by the step's parity so one barrier per step suffices; dB, dC leave as
//                 per-block partials [groups, B, L, N] and dA, dD as per-batch partials [B, E, N],
//                 [B, E], which reduce.cu's sum_columns adds in a fixed order: no float atomics,
//                 deterministic.

typedef unsigned long long u64;

#define CHUNK 64
#define WG 256
#define MAX_STATE 256

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

extern "C" __global__ void selective_scan(const float* u, const float* delta, const float* a, const float* b,
                                          const float* c, const float* d, const float* z, const float* h0, float* y,
                                          float* last, float* saved, u64 batch, u64 len, u64 chan, u64 state,
                                          u64 n_chunks, unsigned int flags) {
    const bool has_z = (flags & 1u) != 0;
    const bool has_h0 = (flags & 2u) != 0;
    const bool want_saved = (flags & 4u) != 0;
    const u64 N = state;
    const u64 E = chan;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < batch * chan; i += (u64)gridDim.x * blockDim.x) {
        u64 bi = i / E;
        u64 e = i % E;
        float h[MAX_STATE];
        for (u64 n = 0; n < N; n++) h[n] = has_h0 ? h0[(bi * E + e) * N + n] : 0.0f;
        for (u64 t = 0; t < len; t++) {
            u64 row = bi * len + t;
            if (want_saved && t % CHUNK == 0) {
                u64 base = ((bi * n_chunks + t / CHUNK) * E + e) * N;
                for (u64 n = 0; n < N; n++) saved[base + n] = h[n];
            }
            float dt = delta[row * E + e];
            float ut = u[row * E + e];
            float acc = 0.0f;
            for (u64 n = 0; n < N; n++) {
                h[n] = expf(dt * a[e * N + n]) * h[n] + dt * b[row * N + n] * ut;
                acc += c[row * N + n] * h[n];
            }
            float yv = acc + d[e] * ut;
            if (has_z) {
                float zt = z[row * E + e];
                yv *= zt * sigmoid(zt);
            }
            y[row * E + e] = yv;
        }
        for (u64 n = 0; n < N; n++) last[(bi * E + e) * N + n] = h[n];
    }
}

extern "C" __global__ void selective_scan_backward(
    const float* u, const float* delta, const float* a, const float* b, const float* c, const float* d,
    const float* z, const float* saved, const float* gy, float* du, float* ddelta, float* dz, float* dh0,
    float* db_part, float* dc_part, float* da_part, float* dd_part, u64 batch, u64 len, u64 chan, u64 state,
    u64 n_chunks, unsigned int flags, u64 groups, u64 per_group) {
    __shared__ float red_y[2 * WG];
    __shared__ float red_delta[2 * WG];
    __shared__ float red_u[2 * WG];
    __shared__ float red_b[2 * WG];
    __shared__ float red_c[2 * WG];
    const bool has_z = (flags & 1u) != 0;
    const u64 N = state;
    const u64 E = chan;
    const u64 L = len;
    const unsigned int lid = threadIdx.x;
    // The block index is uniform across the block, so every barrier below is reached by all.
    for (u64 w = blockIdx.x; w < batch * groups; w += gridDim.x) {
        u64 bi = w / groups;
        u64 grp = w % groups;
        u64 g = lid / N;
        u64 n = lid % N;
        u64 e = grp * per_group + g;
        bool live = g < per_group && e < E;
        float a_en = live ? a[e * N + n] : 0.0f;
        float d_e = live ? d[e] : 0.0f;
        float dh = 0.0f;
        float da_acc = 0.0f;
        float dd_acc = 0.0f;
        // hs[j] = the state after step t0 + j of the current chunk.
        float hs[CHUNK];
        for (u64 kk = 0; kk < n_chunks; kk++) {
            u64 k = n_chunks - 1 - kk;
            u64 t0 = k * CHUNK;
            u64 steps = min((u64)CHUNK, L - t0);
            float h_start = 0.0f;
            if (live) {
                h_start = saved[((bi * n_chunks + k) * E + e) * N + n];
                float h = h_start;
                for (u64 j = 0; j < steps; j++) {
                    u64 row = bi * L + t0 + j;
                    float dt = delta[row * E + e];
                    h = expf(dt * a_en) * h + dt * b[row * N + n] * u[row * E + e];
                    hs[j] = h;
                }
            }
            for (u64 jj = 0; jj < steps; jj++) {
                u64 j = steps - 1 - jj;
                u64 t = t0 + j;
                u64 row = bi * L + t;
                unsigned int slot = (unsigned int)(t & 1u) * WG;
                float c_delta = 0.0f, c_u = 0.0f, c_y = 0.0f, c_b = 0.0f, c_c = 0.0f;
                float gss = 0.0f, dt = 0.0f, ut = 0.0f;
                if (live) {
                    dt = delta[row * E + e];
                    ut = u[row * E + e];
                    gss = gy[row * E + e];
                    if (has_z) {
                        float zt = z[row * E + e];
                        gss *= zt * sigmoid(zt);
                    }
                    float h_t = hs[j];
                    float h_prev = j > 0 ? hs[j - 1] : h_start;
                    float ct = c[row * N + n];
                    float bt = b[row * N + n];
                    dh += gss * ct;
                    c_c = gss * h_t;
                    c_y = ct * h_t;
                    float da = expf(dt * a_en);
                    c_delta = dh * (a_en * da * h_prev + bt * ut);
                    da_acc += dh * dt * da * h_prev;
                    c_b = dh * dt * ut;
                    c_u = dh * bt;
                    dh *= da;
                }
                red_delta[slot + lid] = c_delta;
                red_u[slot + lid] = c_u;
                red_y[slot + lid] = c_y;
                red_b[slot + lid] = c_b;
                red_c[slot + lid] = c_c;
                __syncthreads();
                // Sums over n: the channel's first lane.
                if (live && n == 0) {
                    float s_delta = 0.0f, s_u = 0.0f, s_y = 0.0f;
                    for (u64 q = 0; q < N; q++) {
                        s_delta += red_delta[slot + lid + q];
                        s_u += red_u[slot + lid + q];
                        s_y += red_y[slot + lid + q];
                    }
                    ddelta[row * E + e] = s_delta;
                    du[row * E + e] = gss * d_e + dt * s_u;
                    dd_acc += gss * ut;
                    if (has_z) {
                        float zt = z[row * E + e];
                        float s = sigmoid(zt);
                        dz[row * E + e] = gy[row * E + e] * (s_y + d_e * ut) * (s + zt * s * (1.0f - s));
                    }
                }
                // Sums over the block's channels: the lanes of its last channel row, one per n.
                if (g == per_group - 1) {
                    float s_b = 0.0f, s_c = 0.0f;
                    for (u64 q = 0; q < per_group; q++) {
                        s_b += red_b[slot + q * N + n];
                        s_c += red_c[slot + q * N + n];
                    }
                    u64 at = (grp * batch * L + row) * N + n;
                    db_part[at] = s_b;
                    dc_part[at] = s_c;
                }
            }
        }
        if (live) {
            dh0[(bi * E + e) * N + n] = dh;
            da_part[(bi * E + e) * N + n] = da_acc;
            if (n == 0) dd_part[bi * E + e] = dd_acc;
        }
        // The next block index reuses the shared buffers.
        __syncthreads();
    }
}
