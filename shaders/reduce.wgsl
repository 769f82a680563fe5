// Reductions. sum_partial is one pass of the op `sum` (the launcher repeats it), hence its own name.
// Bindings: 0 params; 1 x; 2 out.
//   sum_partial  params {n, square}: out[w] = sum of x[w*1024 .. (w+1)*1024] (squared when square=1);
//                one workgroup of 256 per 1024 inputs; run again on the partials until one is left.
//   sum_columns  params {rows, cols, chunk}: x [rows, cols] -> out [ceil(rows/chunk), cols], each
//                output row the sum of `chunk` input rows; one invocation per (output row, column).
//                Repeated until one row is left: short loops spread the work over more threads,
//                and llvmpipe (lavapipe) stops any shader loop after 65535 iterations.
//   expand       params {n, nx}: out[i] = x[i % nx].
// Dispatch: ctx.grid(invocations, 256); flat index = gid.x + gid.y * nwg.x * 256.

struct Params { a: u32, b: u32, c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    let base = w * 1024u;
    var acc = 0.0;
    for (var k = 0u; k < 4u; k++) {
        let i = base + k * 256u + lid.x;
        if (i < p.a) {
            let v = x[i];
            acc += select(v, v * v, p.b == 1u);
        }
    }
    partial[lid.x] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid.x < s) { partial[lid.x] += partial[lid.x + s]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { out[w] = partial[0]; }
}

@compute @workgroup_size(256)
fn sum_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let out_rows = (p.a + p.c - 1u) / p.c;
    if (i >= out_rows * p.b) { return; }
    let row = i / p.b;
    let col = i % p.b;
    let end = min(p.a, (row + 1u) * p.c);
    var acc = 0.0;
    for (var r = row * p.c; r < end; r++) { acc += x[r * p.b + col]; }
    out[i] = acc;
}

@compute @workgroup_size(256)
fn expand(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.a) { return; }
    out[i] = x[i % p.b];
}
