// Block copy between row-major matrices, the one kernel behind narrow, concat and their backward
// passes: dst[r, dst_col + c] = src[r, src_col + c] for r < rows, c < width, where src has
// src_cols columns per row and dst has dst_cols. Elements are copied as u32 words, so the same
// kernel moves f32 and u32 tensors bit for bit (an f32 load/store could flush denormals).
// Bindings: 0 params {rows, width, src_cols, src_col, dst_cols, dst_col}; 1 src; 2 dst (only the
// block is written: the launcher gives it a fresh buffer whose other columns other copies or a
// clear fill). Dispatch: ctx.grid(rows * width, 256); flat index = gid.x + gid.y * nwg.x * 256.

struct Params { rows: u32, width: u32, src_cols: u32, src_col: u32, dst_cols: u32, dst_col: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(256)
fn copy_block(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.rows * p.width) { return; }
    let r = i / p.width;
    let c = i % p.width;
    dst[r * p.dst_cols + p.dst_col + c] = src[r * p.src_cols + p.src_col + c];
}
