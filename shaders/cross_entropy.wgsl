// Row-wise log-softmax and the fused cross-entropy loss (formulas in
// src/backend/cpu/cross_entropy.rs). x, logits: [rows, v]. One workgroup of 256 per row, looping
// over the row, so any v works (v = 50280 for a GPT-NeoX vocabulary). Each invocation keeps an
// online (max, sum of exp(x - max)) pair over its columns; a tree in workgroup memory merges them.
// cross_entropy_rows is the per-row half of the op `cross_entropy` (reduce.wgsl sums the rows).
// Params {rows, v, ignore_index, has_ignore, inv_count (f32)} for every entry.
// Bindings:
//   log_softmax              1 x; 2 y [rows, v].
//   log_softmax_backward     1 x; 2 g [rows, v]; 3 dx [rows, v].
//   cross_entropy_rows       1 logits; 2 targets [rows] (u32); 3 row_loss [rows] =
//                            (lse(row) - row[target]) * inv_count, 0 for an ignored row. The
//                            launcher sums it with reduce.wgsl's sum_partial.
//   cross_entropy_backward   1 logits; 2 targets; 3 g [1] (the loss's gradient); 4 dlogits [rows, v]
//                            = (softmax(row) - onehot(target)) * g * inv_count, 0 for ignored rows.
// Dispatch: ctx.grid(rows, 1) workgroups; row = wid.x + wid.y * nwg.x.

struct Params { rows: u32, v: u32, ignore_index: u32, has_ignore: u32, inv_count: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// log_softmax
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
// log_softmax_backward
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
// cross_entropy_rows and cross_entropy_backward
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(3) var<storage, read> g_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;

const WG: u32 = 256u;
// Start value of a running max: exp(NEG_BIG - anything finite) is 0, and unlike -inf it never
// makes inf - inf = NaN when a whole stripe of a row is empty (v < 256).
const NEG_BIG: f32 = -3.4028235e38;

var<workgroup> wm: array<f32, 256>;
var<workgroup> ws: array<f32, 256>;

fn row_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

// (max, log sum_j exp(x_j - max)) of the row starting at `base`, returned to every invocation.
fn row_stats(lid: u32, base: u32) -> vec2<f32> {
    var m = NEG_BIG;
    var s = 0.0;
    for (var j = lid; j < p.v; j += WG) {
        let v = x[base + j];
        if (v > m) {
            s = s * exp(m - v) + 1.0;
            m = v;
        } else {
            s += exp(v - m);
        }
    }
    wm[lid] = m;
    ws[lid] = s;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st >> 1u) {
        if (lid < st) {
            let m2 = max(wm[lid], wm[lid + st]);
            ws[lid] = ws[lid] * exp(wm[lid] - m2) + ws[lid + st] * exp(wm[lid + st] - m2);
            wm[lid] = m2;
        }
        workgroupBarrier();
    }
    let stats = vec2<f32>(wm[0], log(ws[0]));
    // Everyone reads slot 0 before anything reuses the arrays.
    workgroupBarrier();
    return stats;
}

fn workgroup_sum(lid: u32, v: f32) -> f32 {
    ws[lid] = v;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st >> 1u) {
        if (lid < st) { ws[lid] += ws[lid + st]; }
        workgroupBarrier();
    }
    return ws[0];
}

fn is_ignored(t: u32) -> bool { return p.has_ignore == 1u && t == p.ignore_index; }

@compute @workgroup_size(256)
fn log_softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    // The row is uniform across the workgroup, so returning early keeps barriers uniform.
    let row = row_index(wid, nwg);
    if (row >= p.rows) { return; }
    let base = row * p.v;
    let st = row_stats(lid.x, base);
    for (var j = lid.x; j < p.v; j += WG) {
        y[base + j] = x[base + j] - st.x - st.y;
    }
}

// dx_k = g_k - softmax_k * sum_j g_j.
@compute @workgroup_size(256)
fn log_softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_index(wid, nwg);
    if (row >= p.rows) { return; }
    let base = row * p.v;
    let st = row_stats(lid.x, base);
    var acc = 0.0;
    for (var j = lid.x; j < p.v; j += WG) { acc += g[base + j]; }
    let gsum = workgroup_sum(lid.x, acc);
    for (var k = lid.x; k < p.v; k += WG) {
        dx[base + k] = g[base + k] - exp(x[base + k] - st.x - st.y) * gsum;
    }
}

@compute @workgroup_size(256)
fn cross_entropy_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_index(wid, nwg);
    if (row >= p.rows) { return; }
    let base = row * p.v;
    let st = row_stats(lid.x, base);
    if (lid.x == 0u) {
        let t = targets[row];
        if (is_ignored(t)) {
            row_loss[row] = 0.0;
        } else {
            row_loss[row] = (st.x + st.y - x[base + t]) * p.inv_count;
        }
    }
}

@compute @workgroup_size(256)
fn cross_entropy_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_index(wid, nwg);
    if (row >= p.rows) { return; }
    let base = row * p.v;
    let st = row_stats(lid.x, base);
    let t = targets[row];
    let scale = select(g_loss[0] * p.inv_count, 0.0, is_ignored(t));
    for (var j = lid.x; j < p.v; j += WG) {
        let onehot = select(0.0, 1.0, j == t);
        dlogits[base + j] = (exp(x[base + j] - st.x - st.y) - onehot) * scale;
    }
}
