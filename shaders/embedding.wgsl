// Embedding lookup (a row gather) and its backward (a scatter-add of rows), without float atomics.
// Bindings: 0 params {a, b, c}; 1 idx (u32); 2 src (f32); 3 dst (f32).
//   embedding           params {n, d, v}: idx = ids [n]; src = table [v, d]; dst = out [n, d].
//                       One invocation per output element; ids were validated on the host, the
//                       check here only keeps a bad id from reading out of bounds.
//   embedding_backward  params {u, d, 0}: idx = plan; src = g [n, d]; dst = grad [v, d], zeroed.
//                       plan = [rows: u][offsets: u + 1][positions: n], built on the host: the u
//                       distinct ids in increasing order, and for row k the token positions
//                       positions[offsets[k] .. offsets[k + 1]] that hold it, in token order.
//                       One invocation per (distinct row k, column j) sums its tokens' gradients
//                       in token order and writes grad[rows[k], j]: each element has exactly one
//                       writer (deterministic, no atomics), the work is O(n d), the parallelism
//                       u d, and the sum order is the cpu twin's, so the two agree bit for bit.
// Dispatch: ctx.grid(invocations, 256); flat index = gid.x + gid.y * nwg.x * 256.

struct Params { a: u32, b: u32, c: u32 }

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
    if (id >= p.c) { dst[i] = 0.0; return; }
    dst[i] = src[id * d + i % d];
}

@compute @workgroup_size(256)
fn embedding_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let u = p.a;
    let d = p.b;
    if (i >= u * d) { return; }
    let k = i / d;
    let j = i % d;
    let positions = 2u * u + 1u;
    var acc = 0.0;
    for (var q = idx[u + k]; q < idx[u + k + 1u]; q++) {
        acc += src[idx[positions + q] * d + j];
    }
    dst[idx[k] * d + j] = acc;
}
