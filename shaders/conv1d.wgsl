// Causal depthwise conv1d, channels last (see src/backend/cpu/conv1d.rs for the formulas).
// x, g, y, dx: [b, l, c] flattened; weight: [c, k]; bias: [c]. Rows are the flat (batch, time)
// index b * l + t, so time t = row % l and a tap reaching before t = 0 reads zero padding.
// Bindings (params {rows = b*l, l, c, k, chunks} for every entry):
//   causal_conv1d                   1 x; 2 weight; 3 bias (zeros when the op has none); 4 y.
//                                   One invocation per output element.
//   causal_conv1d_backward_x        1 g; 2 weight; 3 dx. One invocation per input element.
//   causal_conv1d_backward_params   1 x; 2 g; 3 dweight_parts [chunks, c*k]; 4 dbias_parts [chunks, c].
//                                   One invocation per (chunk of CHUNK rows, tap j in 0..=k, channel):
//                                   j < k sums g*x into dweight, j == k sums g into dbias. The
//                                   launcher then adds the chunks with reduce.wgsl's sum_columns, so
//                                   the reduction over batch and time is deterministic (no atomics).
// Dispatch: ctx.grid(invocations, 256); flat index = gid.x + gid.y * nwg.x * 256.

struct Params { rows: u32, l: u32, c: u32, k: u32, chunks: u32 }

@group(0) @binding(0) var<uniform> p: Params;
// causal_conv1d
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
// causal_conv1d_backward_x (binding 2 is `weight` as above)
@group(0) @binding(1) var<storage, read> g_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
// causal_conv1d_backward_params (binding 1 is `x` as above)
@group(0) @binding(2) var<storage, read> g_p: array<f32>;
@group(0) @binding(3) var<storage, read_write> dweight_parts: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias_parts: array<f32>;

const WG: u32 = 256u;
// Rows per partial sum in causal_conv1d_backward_params; the launcher uses the same number.
const CHUNK: u32 = 64u;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * WG; }

@compute @workgroup_size(256)
fn causal_conv1d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.rows * p.c) { return; }
    let row = i / p.c;
    let ch = i % p.c;
    let t = row % p.l;
    var acc = bias[ch];
    for (var j = 0u; j < p.k; j++) {
        // Input time t - (k-1) + j exists when t + j >= k - 1.
        if (t + j + 1u >= p.k) {
            acc += weight[ch * p.k + j] * x[i - (p.k - 1u - j) * p.c];
        }
    }
    y[i] = acc;
}

// dx[b, s, c] = sum_j weight[c, j] * g[b, s + (k-1) - j, c] over the outputs that exist (< l).
@compute @workgroup_size(256)
fn causal_conv1d_backward_x(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.rows * p.c) { return; }
    let ch = i % p.c;
    let s = (i / p.c) % p.l;
    var acc = 0.0;
    for (var j = 0u; j < p.k; j++) {
        let shift = p.k - 1u - j;
        if (s + shift < p.l) {
            acc += weight[ch * p.k + j] * g_x[i + shift * p.c];
        }
    }
    dx[i] = acc;
}

// Flat invocation index = (chunk * (k+1) + j) * c + ch, so neighbouring invocations read
// neighbouring channels.
@compute @workgroup_size(256)
fn causal_conv1d_backward_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.chunks * (p.k + 1u) * p.c) { return; }
    let ch = i % p.c;
    let j = (i / p.c) % (p.k + 1u);
    let chunk = i / (p.c * (p.k + 1u));
    let end = min(p.rows, (chunk + 1u) * CHUNK);
    var acc = 0.0;
    if (j == p.k) {
        for (var row = chunk * CHUNK; row < end; row++) {
            acc += g_p[row * p.c + ch];
        }
        dbias_parts[chunk * p.c + ch] = acc;
    } else {
        let shift = p.k - 1u - j;
        for (var row = chunk * CHUNK; row < end; row++) {
            if (row % p.l >= shift) {
                acc += g_p[row * p.c + ch] * x[(row - shift) * p.c + ch];
            }
        }
        dweight_parts[chunk * p.c * p.k + ch * p.k + j] = acc;
    }
}
