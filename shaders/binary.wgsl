// Elementwise binary ops with b repeated over a's leading dimensions: out[i] = a[i] (op) b[i % nb].
// Bindings: 0 params {n, nb}; 1 a [n]; 2 b [nb]; 3 out [n].
// Dispatch: ctx.grid(n, 256); flat index = gid.x + gid.y * nwg.x * 256.

struct Params { n: u32, nb: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    out[i] = a[i] + b[i % p.nb];
}

@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    out[i] = a[i] * b[i % p.nb];
}
