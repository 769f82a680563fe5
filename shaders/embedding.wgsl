// Embedding lookup (a row gather) and its backward (a scatter-add of rows), without float atomics.
// Both entries may run once per chunk of table rows [row0, row0 + rows) (src, dst bound to that
// slice; see src/backend/wgpu/binding.rs), for tables over the per-binding limit.
// Bindings: 0 params {a, b, c, e, f}; 1 idx (u32); 2 src (f32); 3 dst (f32).
//   embedding           params {n, d, rows, row0, 0}: idx = ids [n]; src = table rows [rows, d];
//                       dst = out [n, d]. One invocation per output element; it writes only when
//                       its id is in this chunk (ids were validated on the host, so every element
//                       is written by exactly one chunk).
//   embedding_backward  params {u, d, k0, row0, kn}: idx = plan; src = g [n, d]; dst = grad rows
//                       [row0 ..] of [v, d], zeroed; this chunk sums plan rows k0 .. k0 + kn.
//                       A g over the limit runs as chunks of tokens too, each with its own plan
//                       (positions relative to the chunk) adding to what the earlier ones wrote.
//                       plan = [rows: u][offsets: u + 1][positions: n], built on the host: the u
//                       distinct ids in increasing order, and for row k the token positions
//                       positions[offsets[k] .. offsets[k + 1]] that hold it, in token order.
//                       One invocation per (distinct row k, column j) sums its tokens' gradients
//                       in token order and writes grad[rows[k], j]: each element has exactly one
//                       writer (deterministic, no atomics), the work is O(n d), the parallelism
//                       u d, and the sum order is the cpu twin's, so the two agree bit for bit.
// Dispatch: ctx.grid(invocations, 256); flat index = gid.x + gid.y * nwg.x * 256.

struct Params { a: u32, b: u32, c: u32, e: u32, f: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn embedding(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let d = p.b;
    if (i >= p.a * d) { return; }
    let id = idx[i / d];
    if (id < p.e || id - p.e >= p.c) { return; }
    dst[i] = src[(id - p.e) * d + i % d];
}

@compute @workgroup_size(256)
fn embedding_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let u = p.a;
    let d = p.b;
    if (i >= p.f * d) { return; }
    let k = p.c + i / d;
    let j = i % d;
    let positions = 2u * u + 1u;
    let out = (idx[k] - p.e) * d + j;
    // Continue from what earlier chunks of tokens added (zero for the first), in token order.
    var acc = dst[out];
    for (var q = idx[u + k]; q < idx[u + k + 1u]; q++) {
        acc += src[idx[positions + q] * d + j];
    }
    dst[out] = acc;
}
