// RMSNorm over the last dimension (HF transformers' MambaRMSNorm), forward and backward.
// x: [rows, d], weight: [d]. One workgroup of 256 per row: each invocation strides over the row,
// then a tree reduction in workgroup memory combines the 256 partial sums (any d >= 1 works).
// Bindings:
//   rms_norm           params {rows, d, eps}; 1 x [rows, d]; 2 weight [d]; 3 out [rows, d].
//   rms_norm_backward  params {rows, d, eps}; 1 x; 2 weight; 3 g [rows, d]; 4 dx [rows, d];
//                      5 dweight_rows [rows, d] = g * x * inv_rms per row.
// Dispatch for both: ctx.grid(rows, 1) workgroups; row = wid.x + wid.y * nwg.x.
//   rms_norm_dweight_chunks  params {rows, d, eps (unused), chunks}; 1 dweight_rows;
//                      2 dweight_parts [chunks, d]: sums of CHUNK consecutive rows.
//                      One invocation per (chunk, column): ctx.grid(chunks * d, 256).
// dweight = the launcher's reduce.wgsl sum_columns over the chunk sums: deterministic (no atomics),
// and no shader loop runs past 65535 iterations (llvmpipe stops loops there, so a single
// sum_columns over more rows than that would silently stop short on lavapipe).

struct Params { rows: u32, d: u32, eps: f32, chunks: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// Backward only (binding 3 is the incoming gradient there; an entry point uses one or the other).
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> dweight_rows: array<f32>;
// rms_norm_dweight_chunks
@group(0) @binding(1) var<storage, read> dweight_rows_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> dweight_parts: array<f32>;

const WG: u32 = 256u;
// Rows per chunk in rms_norm_dweight_chunks; the launcher uses the same number.
const CHUNK: u32 = 64u;
var<workgroup> partial: array<f32, 256>;

// The sum of `partial` over the workgroup, returned to every invocation.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) { partial[lid] += partial[lid + s]; }
        workgroupBarrier();
    }
    let total = partial[0];
    // Nobody may overwrite partial[0] (a second call) before everyone has read it.
    workgroupBarrier();
    return total;
}

// 1 / sqrt(mean(x[row]^2) + eps), the same value in every invocation of the workgroup.
fn inv_rms(lid: u32, base: u32) -> f32 {
    var ss = 0.0;
    for (var j = lid; j < p.d; j += WG) {
        let v = x[base + j];
        ss += v * v;
    }
    let total = workgroup_sum(lid, ss);
    return inverseSqrt(total / f32(p.d) + p.eps);
}

@compute @workgroup_size(256)
fn rms_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    // The row is uniform across the workgroup, so returning early keeps barriers uniform.
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }
    let base = row * p.d;
    let r = inv_rms(lid.x, base);
    for (var j = lid.x; j < p.d; j += WG) {
        out[base + j] = x[base + j] * r * weight[j];
    }
}

// dx_k = r w_k g_k - (r^3 / d) x_k sum_j g_j w_j x_j; dweight_rows[row, j] = g_j x_j r.
@compute @workgroup_size(256)
fn rms_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }
    let base = row * p.d;
    let r = inv_rms(lid.x, base);
    var dot = 0.0;
    for (var j = lid.x; j < p.d; j += WG) {
        dot += g[base + j] * weight[j] * x[base + j];
    }
    let c = r * r * r * workgroup_sum(lid.x, dot) / f32(p.d);
    for (var k = lid.x; k < p.d; k += WG) {
        let xk = x[base + k];
        let gk = g[base + k];
        dx[base + k] = r * weight[k] * gk - c * xk;
        dweight_rows[base + k] = gk * xk * r;
    }
}

@compute @workgroup_size(256)
fn rms_norm_dweight_chunks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.chunks * p.d) { return; }
    let chunk = i / p.d;
    let j = i % p.d;
    let end = min(p.rows, (chunk + 1u) * CHUNK);
    var acc = 0.0;
    for (var row = chunk * CHUNK; row < end; row++) { acc += dweight_rows_in[row * p.d + j]; }
    dweight_parts[i] = acc;
}
