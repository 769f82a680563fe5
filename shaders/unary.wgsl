// Elementwise unary ops and their backward passes. Entry points carry the ops' names, except
// exp_forward: `exp` is a WGSL builtin, so the op `exp` cannot name its entry point.
// Bindings: 0 params {n, c (f32 bits, for scale)}; 1 x [n]; 2 forward: out [n] / backward: g [n];
// 3 backward: out [n]. Dispatch: ctx.grid(n, 256).

struct Params { n: u32, c: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;

// sigmoid: shaders/sigmoid.wgsl, joined after this file by `kernel!`.

// PyTorch's threshold: linear past 20.
fn softplus_scalar(v: f32) -> f32 {
    if (v > 20.0) { return v; }
    return log(1.0 + exp(v));
}

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

@compute @workgroup_size(256)
fn silu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    b2[i] = x[i] * sigmoid(x[i]);
}

@compute @workgroup_size(256)
fn silu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    let s = sigmoid(x[i]);
    b3[i] = b2[i] * (s + x[i] * s * (1.0 - s));
}

@compute @workgroup_size(256)
fn softplus(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    b2[i] = softplus_scalar(x[i]);
}

@compute @workgroup_size(256)
fn softplus_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    b3[i] = b2[i] * sigmoid(x[i]);
}

@compute @workgroup_size(256)
fn exp_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    b2[i] = exp(x[i]);
}

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    b2[i] = x[i] * p.c;
}
