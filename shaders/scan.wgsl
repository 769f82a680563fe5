// Selective scan (Mamba-1's S6 recurrence), forward and backward. Math: src/ops/scan.rs.
//
// Why these layouts: measured on lavapipe (Mesa 22.3 llvmpipe, 2 cores shared with other builds,
// so +-30%), forward with z, best of 3, in millions of (b, t, e, n) state updates per second:
//
//   B, L, E, N          per (b,e,n), 256/wg, sum   same, 16 steps    per (b,e), N states
//                       over n each step           per barrier       in private memory
//   1, 512, 256, 16      5.4 - 9.7                  5.9 - 7.2          24 - 32
//   1, 512, 1024, 16     8.1 - 12                   7.6                19 - 59
//   2, 256, 512, 16      8.2                        10.3               36
//   1, 512, 128, 4       9.2 - 17                   17                 24 - 57
//   1, 256, 64, 64       9.0 - 18                   20 - 21            39 - 41
//
// so the forward is one invocation per (b, e) walking time (2.5-5x faster; fewer barriers did not
// rescue the per-state layout). The backward must sum over n (ddelta, du) and over channels (dB,
// dC) every step; one invocation per (b, e, n) does both through workgroup memory with CHUNK
// floats of private state (hs) and no float atomics; it runs at 2.2 - 7.7 M state-steps/s on the same
// shapes (the cpu twin, rayon at opt-level 1, does about 50 - 250 M forward, 35 - 160 M backward).
// On a real GPU the per-(b,e,n) layout would give N times more parallelism to the forward too; we
// had none to measure on, so lavapipe decided.
//
// Shapes: u, delta, z, y, gy, du, ddelta, dz: [B, L, E]; a: [E, N]; b, c: [B, L, N]; d: [E];
// h0, last, dh0: [B, E, N]; saved: [B, NC, E, N], NC = ceil(L / CHUNK), saved[b, k] = the state
// before step k * CHUNK. N <= 256 (MAX_STATE; one workgroup holds all states of a channel).
//
// Params (binding 0): {batch, len, chan, state, groups, per_group, n_chunks, flags}; flags bit 0:
// z given, bit 1: h0 given, bit 2: write saved. per_group = 256 / N channels per backward
// workgroup, groups = ceil(E / per_group) workgroups per batch element.
//
// selective_scan   one invocation per (b, e); its N states live in private memory.
//   Bindings: 1 u, 2 delta, 3 a, 4 b, 5 c, 6 d, 7 z, 8 h0 (read); 9 y, 10 last, 11 saved (write).
//   Dispatch: ctx.grid(B * E, 64).
// selective_scan_backward  one invocation per (b, e, n); a workgroup holds per_group channels with all their
//   states. Per chunk (last first) each invocation recomputes its state over the chunk into
//   private memory from the saved one (as mamba-ssm's backward does), then walks the chunk
//   backwards. Each step the sums over n (ddelta, du, and C.h for dz) and over the workgroup's
//   channels (dB, dC) go through workgroup memory; dB, dC leave as per-workgroup partials, dA, dD
//   as per-batch partials, which reduce.wgsl's sum_columns adds up in a fixed order: no float
//   atomics, so the result is deterministic.
//   Bindings: 1 u, 2 delta, 3 a, 4 b, 5 c, 6 d, 7 z, 8 saved, 9 gy (read); 10 du, 11 ddelta,
//   12 dz, 13 dh0, 14 db_part [groups, B, L, N], 15 dc_part [groups, B, L, N], 16 da_part
//   [B, E, N], 17 dd_part [B, E] (write). Dispatch: ctx.grid(B * groups, 1) (one per workgroup).
//
// The two entries declare different variables at bindings 8-11; each uses only its own. Absent
// z / h0 are bound to a 4-byte placeholder and never read (flags). Every barrier is reached by
// all invocations of a workgroup (the loops' bounds are uniform; idle lanes add zeros).

const CHUNK: u32 = 64u;
const WG: u32 = 256u;
const MAX_STATE: u32 = 256u;

struct Params {
    batch: u32,
    len: u32,
    chan: u32,
    state: u32,
    groups: u32,
    per_group: u32,
    n_chunks: u32,
    flags: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read> delta: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read> c: array<f32>;
@group(0) @binding(6) var<storage, read> d: array<f32>;
@group(0) @binding(7) var<storage, read> z: array<f32>;

// forward
@group(0) @binding(8) var<storage, read> h0: array<f32>;
@group(0) @binding(9) var<storage, read_write> y: array<f32>;
@group(0) @binding(10) var<storage, read_write> last: array<f32>;
@group(0) @binding(11) var<storage, read_write> saved_out: array<f32>;

// backward
@group(0) @binding(8) var<storage, read> saved: array<f32>;
@group(0) @binding(9) var<storage, read> gy: array<f32>;
@group(0) @binding(10) var<storage, read_write> du: array<f32>;
@group(0) @binding(11) var<storage, read_write> ddelta: array<f32>;
@group(0) @binding(12) var<storage, read_write> dz: array<f32>;
@group(0) @binding(13) var<storage, read_write> dh0: array<f32>;
@group(0) @binding(14) var<storage, read_write> db_part: array<f32>;
@group(0) @binding(15) var<storage, read_write> dc_part: array<f32>;
@group(0) @binding(16) var<storage, read_write> da_part: array<f32>;
@group(0) @binding(17) var<storage, read_write> dd_part: array<f32>;

// Per-step sums, double-buffered by the step's parity so one barrier per step suffices: slot s is
// rewritten two steps later, after every reader has passed the barrier in between.
var<workgroup> red_y: array<f32, 512>;
var<workgroup> red_delta: array<f32, 512>;
var<workgroup> red_u: array<f32, 512>;
var<workgroup> red_b: array<f32, 512>;
var<workgroup> red_c: array<f32, 512>;

fn has_z() -> bool { return (p.flags & 1u) != 0u; }
fn has_h0() -> bool { return (p.flags & 2u) != 0u; }
fn want_saved() -> bool { return (p.flags & 4u) != 0u; }

// sigmoid: shaders/sigmoid.wgsl, joined after this file by `kernel!`.

// ---- forward ---------------------------------------------------------------------------------------

@compute @workgroup_size(64)
fn selective_scan(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.batch * p.chan) { return; }
    let bi = i / p.chan;
    let e = i % p.chan;
    let N = p.state;
    let E = p.chan;
    var h: array<f32, MAX_STATE>;
    if (has_h0()) {
        for (var n = 0u; n < N; n++) { h[n] = h0[(bi * E + e) * N + n]; }
    }
    for (var t = 0u; t < p.len; t++) {
        let row = bi * p.len + t;
        if (want_saved() && t % CHUNK == 0u) {
            let base = ((bi * p.n_chunks + t / CHUNK) * E + e) * N;
            for (var n = 0u; n < N; n++) { saved_out[base + n] = h[n]; }
        }
        let dt = delta[row * E + e];
        let ut = u[row * E + e];
        var acc = 0.0;
        for (var n = 0u; n < N; n++) {
            h[n] = exp(dt * a[e * N + n]) * h[n] + dt * b[row * N + n] * ut;
            acc += c[row * N + n] * h[n];
        }
        var yv = acc + d[e] * ut;
        if (has_z()) {
            let zt = z[row * E + e];
            yv *= zt * sigmoid(zt);
        }
        y[row * E + e] = yv;
    }
    for (var n = 0u; n < N; n++) { last[(bi * E + e) * N + n] = h[n]; }
}

// ---- backward --------------------------------------------------------------------------------------

@compute @workgroup_size(256)
fn selective_scan_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= p.batch * p.groups) { return; } // uniform
    let bi = w / p.groups;
    let grp = w % p.groups;
    let g = lid.x / p.state;
    let n = lid.x % p.state;
    let e = grp * p.per_group + g;
    let live = g < p.per_group && e < p.chan;
    let N = p.state;
    let E = p.chan;
    let L = p.len;

    var a_en = 0.0;
    var d_e = 0.0;
    if (live) {
        a_en = a[e * N + n];
        d_e = d[e];
    }
    var dh = 0.0;
    var da_acc = 0.0;
    var dd_acc = 0.0;
    // hs[j] = the state after step t0 + j of the current chunk.
    var hs: array<f32, CHUNK>;
    for (var kk = 0u; kk < p.n_chunks; kk++) {
        let k = p.n_chunks - 1u - kk;
        let t0 = k * CHUNK;
        let steps = min(CHUNK, L - t0);
        var h_start = 0.0;
        if (live) {
            h_start = saved[((bi * p.n_chunks + k) * E + e) * N + n];
            var h = h_start;
            for (var j = 0u; j < steps; j++) {
                let row = bi * L + t0 + j;
                let dt = delta[row * E + e];
                h = exp(dt * a_en) * h + dt * b[row * N + n] * u[row * E + e];
                hs[j] = h;
            }
        }
        for (var jj = 0u; jj < steps; jj++) {
            let j = steps - 1u - jj;
            let t = t0 + j;
            let row = bi * L + t;
            let slot = (t & 1u) * WG;
            var c_delta = 0.0;
            var c_u = 0.0;
            var c_y = 0.0;
            var c_b = 0.0;
            var c_c = 0.0;
            var gss = 0.0;
            var dt = 0.0;
            var ut = 0.0;
            if (live) {
                dt = delta[row * E + e];
                ut = u[row * E + e];
                gss = gy[row * E + e];
                if (has_z()) {
                    let zt = z[row * E + e];
                    gss *= zt * sigmoid(zt);
                }
                let h_t = hs[j];
                var h_prev = h_start;
                if (j > 0u) { h_prev = hs[j - 1u]; }
                let ct = c[row * N + n];
                let bt = b[row * N + n];
                dh += gss * ct;
                c_c = gss * h_t;
                c_y = ct * h_t;
                let da = exp(dt * a_en);
                c_delta = dh * (a_en * da * h_prev + bt * ut);
                da_acc += dh * dt * da * h_prev;
                c_b = dh * dt * ut;
                c_u = dh * bt;
                dh *= da;
            }
            red_delta[slot + lid.x] = c_delta;
            red_u[slot + lid.x] = c_u;
            red_y[slot + lid.x] = c_y;
            red_b[slot + lid.x] = c_b;
            red_c[slot + lid.x] = c_c;
            workgroupBarrier();
            // Sums over n: the channel's first lane.
            if (live && n == 0u) {
                var s_delta = 0.0;
                var s_u = 0.0;
                var s_y = 0.0;
                for (var q = 0u; q < N; q++) {
                    s_delta += red_delta[slot + lid.x + q];
                    s_u += red_u[slot + lid.x + q];
                    s_y += red_y[slot + lid.x + q];
                }
                ddelta[row * E + e] = s_delta;
                du[row * E + e] = gss * d_e + dt * s_u;
                dd_acc += gss * ut;
                if (has_z()) {
                    let zt = z[row * E + e];
                    let s = sigmoid(zt);
                    dz[row * E + e] = gy[row * E + e] * (s_y + d_e * ut) * (s + zt * s * (1.0 - s));
                }
            }
            // Sums over the workgroup's channels: the lanes of its last channel row, one per n.
            if (g == p.per_group - 1u) {
                var s_b = 0.0;
                var s_c = 0.0;
                for (var q = 0u; q < p.per_group; q++) {
                    s_b += red_b[slot + q * N + n];
                    s_c += red_c[slot + q * N + n];
                }
                let at = (grp * p.batch * L + row) * N + n;
                db_part[at] = s_b;
                dc_part[at] = s_c;
            }
        }
    }
    if (live) {
        dh0[(bi * E + e) * N + n] = dh;
        da_part[(bi * E + e) * N + n] = da_acc;
        if (n == 0u) { dd_part[bi * E + e] = dd_acc; }
    }
}
