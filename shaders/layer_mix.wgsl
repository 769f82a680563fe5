// Hierarchical policy fusion: out = sum_i softmax(logits)_i * xs[i], and its backward
// (formulas in src/backend/cpu/layer_mix.rs). xs: [layers, m]; logits, s: [layers]; out, g: [m].
// Params {layers, m, chunks} for every entry.
// Bindings and dispatch:
//   layer_mix_softmax          1 logits; 2 s_out [layers]. One workgroup.
//   layer_mix          1 xs; 2 s; 3 out [m]. ctx.grid(m, 256).
//   layer_mix_backward         1 xs; 2 s; 3 g [m]; 4 dxs [layers, m] = s_i * g;
//                              5 dot_parts [layers, chunks]: <g, xs_i> over one chunk of CHUNK values.
//                              One workgroup per (layer, chunk): ctx.grid(layers * chunks, 1).
//   layer_mix_backward_logits  1 s; 2 dot_parts; 3 dlogits [layers]. One workgroup; it adds each
//                              layer's chunk partials in order, so the result is deterministic.
// Flat indices: gid.x + gid.y * nwg.x * 256 for invocations, wid.x + wid.y * nwg.x for workgroups.

struct Params { layers: u32, m: u32, chunks: u32 }

@group(0) @binding(0) var<uniform> p: Params;
// layer_mix_softmax
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> s_out: array<f32>;
// layer_mix and layer_mix_backward
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dxs: array<f32>;
@group(0) @binding(5) var<storage, read_write> dot_parts: array<f32>;
// layer_mix_backward_logits
@group(0) @binding(1) var<storage, read> s_l: array<f32>;
@group(0) @binding(2) var<storage, read> dot_parts_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;

const WG: u32 = 256u;
// Values of one layer per dot-product partial (16 per invocation); the launcher uses the same.
const CHUNK: u32 = 4096u;
var<workgroup> partial: array<f32, 256>;

fn workgroup_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st >> 1u) {
        if (lid < st) { partial[lid] += partial[lid + st]; }
        workgroupBarrier();
    }
    return partial[0];
}

// The layer count is small (one per residual output), so every invocation finds the max and the
// normaliser itself and writes its own layers.
@compute @workgroup_size(256)
fn layer_mix_softmax(@builtin(local_invocation_id) lid: vec3<u32>) {
    var mx = logits[0];
    for (var i = 1u; i < p.layers; i++) { mx = max(mx, logits[i]); }
    var total = 0.0;
    for (var i = 0u; i < p.layers; i++) { total += exp(logits[i] - mx); }
    for (var i = lid.x; i < p.layers; i += WG) { s_out[i] = exp(logits[i] - mx) / total; }
}

@compute @workgroup_size(256)
fn layer_mix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = gid.x + gid.y * nwg.x * WG;
    if (n >= p.m) { return; }
    var acc = 0.0;
    for (var i = 0u; i < p.layers; i++) { acc += s[i] * xs[i * p.m + n]; }
    out[n] = acc;
}

@compute @workgroup_size(256)
fn layer_mix_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    // Uniform per workgroup, so the early return keeps the barriers below in uniform control flow.
    let w = wid.x + wid.y * nwg.x;
    if (w >= p.layers * p.chunks) { return; }
    let layer = w / p.chunks;
    let chunk = w % p.chunks;
    let si = s[layer];
    let end = min(p.m, (chunk + 1u) * CHUNK);
    var acc = 0.0;
    for (var n = chunk * CHUNK + lid.x; n < end; n += WG) {
        let gn = g[n];
        acc += gn * xs[layer * p.m + n];
        dxs[layer * p.m + n] = si * gn;
    }
    let total = workgroup_sum(lid.x, acc);
    if (lid.x == 0u) { dot_parts[w] = total; }
}

// dlogits_i = s_i * (d_i - sum_j s_j d_j), d_i = <g, xs_i> = sum over chunks of dot_parts[i, c].
@compute @workgroup_size(256)
fn layer_mix_backward_logits(@builtin(local_invocation_id) lid: vec3<u32>) {
    var acc = 0.0;
    for (var i = lid.x; i < p.layers; i += WG) {
        var d = 0.0;
        for (var c = 0u; c < p.chunks; c++) { d += dot_parts_in[i * p.chunks + c]; }
        acc += s_l[i] * d;
    }
    let mean = workgroup_sum(lid.x, acc);
    for (var i = lid.x; i < p.layers; i += WG) {
        var d = 0.0;
        for (var c = 0u; c < p.chunks; c++) { d += dot_parts_in[i * p.chunks + c]; }
        dlogits[i] = s_l[i] * (d - mean);
    }
}
