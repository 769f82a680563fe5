// The GRU cell's gates, fused (PyTorch nn.GRUCell, gate blocks r, z, n; biases already in gi, gh):
//   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
//   h' = (1 - z) * n + z * h.
// Bindings: 0 params {batch, hidden}; 1 gi [B, 3H]; 2 gh [B, 3H]; 3 h [B, H];
//   gru_gates: 4 out h' [B, H];
//   gru_gates_backward: 4 g = dL/dh' [B, H] (read only; declared read_write because the forward
//   writes binding 4), 5 dgi [B, 3H], 6 dgh [B, 3H], 7 dh [B, H].
// Dispatch: ctx.grid(B * H, 256), one thread per (row, unit); flat index = gid.x + gid.y * nwg.x * 256.

struct Params { batch: u32, hidden: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gi: array<f32>;
@group(0) @binding(2) var<storage, read> gh: array<f32>;
@group(0) @binding(3) var<storage, read> h: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgi: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgh: array<f32>;
@group(0) @binding(7) var<storage, read_write> dh: array<f32>;

// sigmoid: shaders/sigmoid.wgsl, joined after this file by `kernel!`.

// tanh through exp of a non-positive argument, so it never overflows (WGSL's tanh may be built on
// exp(2x), which is inf past x ~ 44 on some drivers).
fn tanh_stable(v: f32) -> f32 {
    let e = exp(-2.0 * abs(v));
    return sign(v) * (1.0 - e) / (1.0 + e);
}

@compute @workgroup_size(256)
fn gru_gates(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.batch * p.hidden) { return; }
    let H = p.hidden;
    let base = (i / H) * 3u * H + i % H;
    let r = sigmoid(gi[base] + gh[base]);
    let z = sigmoid(gi[base + H] + gh[base + H]);
    let n = tanh_stable(gi[base + 2u * H] + r * gh[base + 2u * H]);
    b4[i] = (1.0 - z) * n + z * h[i];
}

// The derivation is beside the cpu twin (src/backend/cpu/gru.rs).
@compute @workgroup_size(256)
fn gru_gates_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.batch * p.hidden) { return; }
    let H = p.hidden;
    let base = (i / H) * 3u * H + i % H;
    let r = sigmoid(gi[base] + gh[base]);
    let z = sigmoid(gi[base + H] + gh[base + H]);
    let gh_n = gh[base + 2u * H];
    let n = tanh_stable(gi[base + 2u * H] + r * gh_n);
    let g = b4[i];
    let dn_pre = g * (1.0 - z) * (1.0 - n * n);
    let dr_pre = dn_pre * gh_n * r * (1.0 - r);
    let dz_pre = g * (h[i] - n) * z * (1.0 - z);
    dgi[base] = dr_pre;
    dgi[base + H] = dz_pre;
    dgi[base + 2u * H] = dn_pre;
    dgh[base] = dr_pre;
    dgh[base + H] = dz_pre;
    dgh[base + 2u * H] = dn_pre * r;
    dh[i] = g * z;
}
