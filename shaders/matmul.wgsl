// Tiled matrix product C = op(A) op(B), op a transpose where the flag says so.
// A is [M, K] (stored [K, M] when trans_a), B is [K, N] (stored [N, K] when trans_b), C is [M, N];
// all row-major.
// Bindings: 0 params {m, k, n, trans_a, trans_b, lda, ldb, ldc, a_off, b_off, c_off, accumulate};
// 1 a; 2 b; 3 c. m, k, n are this launch's block; the strides (ld*, elements per stored row) and
// element offsets place it in the bound slices, so a product over the per-binding limit can run
// as blocks of rows of each operand (src/backend/wgpu/matmul.rs). With accumulate, the block is
// added to what c holds (the blocks of K after the first).
// Dispatch: workgroups of 8x8 threads, each workgroup one 64x64 tile of C and each thread an 8x8
// block of it (register blocking, as in burn's tiling2d and llama.cpp's Vulkan mul_mm). Grid:
// [ceil(n / 64), min(tiles_m, 65535), ceil(tiles_m / 65535)] with tiles_m = ceil(m / 64): the row
// tile is wid.y + wid.z * nwg.y, so M can pass 65535 * 64 rows; spare workgroups of the folded
// grid return at once.
//
// Each step over K stages a 64x16 slice of op(A) and a 16x64 slice of op(B) in workgroup memory
// (zeros past the edges, so shapes need not divide the tile), then every thread accumulates its
// 8x8 block from them: 4 vec4 loads feed 16 vec4 FMAs. The loads from global memory follow each
// operand's memory order, so neighbouring threads read neighbouring addresses whatever the flags.
// On lavapipe (256x256x256) this measured 1.3 GFLOP/s against 0.8 for 16x16 threads of 4x4 blocks
// and 0.2 for one output per thread without tiles.
//
// This file is not a module by itself: the operands' element type `Operand` comes from a header
// put in front of it, matmul_f32_operands.wgsl (the plain product) or matmul_f16_operands.wgsl
// (mixed precision: f16 operands, widened to f32 when staged, so products and sums are f32).

struct Params {
    m: u32, k: u32, n: u32, trans_a: u32, trans_b: u32,
    lda: u32, ldb: u32, ldc: u32, a_off: u32, b_off: u32, c_off: u32, accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<Operand>;
@group(0) @binding(2) var<storage, read> b: array<Operand>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;     // rows and columns of C per workgroup
const TK: u32 = 16u;       // depth of one step over K
const THREADS: u32 = 64u;  // 8 x 8

// Both tiles are stored k-major and four wide: op(A)[row0 + r, k0 + kk] is component r % 4 of
// tile_a[kk * 16 + r / 4], op(B)[k0 + kk, col0 + c] component c % 4 of tile_b[kk * 16 + c / 4],
// so a thread reads its four rows (or columns) of one kk in a single vec4 load.
var<workgroup> tile_a: array<vec4<f32>, 256>;
var<workgroup> tile_b: array<vec4<f32>, 256>;

// op(A)[row, kk], zero outside the matrix.
fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) { return 0.0; }
    if (p.trans_a != 0u) { return f32(a[p.a_off + kk * p.lda + row]); }
    return f32(a[p.a_off + row * p.lda + kk]);
}

// op(B)[kk, col], zero outside the matrix.
fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) { return 0.0; }
    if (p.trans_b != 0u) { return f32(b[p.b_off + col * p.ldb + kk]); }
    return f32(b[p.b_off + kk * p.ldb + col]);
}

// One value of C, or added to it when accumulating.
fn store(i: u32, v: f32) {
    if (p.accumulate != 0u) { c[i] += v; } else { c[i] = v; }
}

// Up to four values of one row of C, starting at `col`, clipped to the matrix.
fn store_row(row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) { return; }
    let base = p.c_off + row * p.ldc + col;
    if (col < p.n) { store(base, v.x); }
    if (col + 1u < p.n) { store(base + 1u, v.y); }
    if (col + 2u < p.n) { store(base + 2u, v.z); }
    if (col + 3u < p.n) { store(base + 3u, v.w); }
}

// acc + a b^T for a 4x4 block: entry [i] of the result is row i of C's block.
fn outer_fma(a: vec4<f32>, b: vec4<f32>, acc: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(
        fma(vec4<f32>(a.x), b, acc[0]),
        fma(vec4<f32>(a.y), b, acc[1]),
        fma(vec4<f32>(a.z), b, acc[2]),
        fma(vec4<f32>(a.w), b, acc[3]),
    );
}

@compute @workgroup_size(8, 8)
fn matmul(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = (wid.y + wid.z * nwg.y) * TILE;
    let col0 = wid.x * TILE;
    // Uniform across the workgroup, so returning here keeps the barriers below in uniform flow.
    if (row0 >= p.m) { return; }
    let t = lid.y * 8u + lid.x;

    // This thread's 8x8 block of C: rows lid.y * 8 + (0..8), columns lid.x * 8 + (0..8), as four
    // 4x4 blocks in registers (no dynamically indexed private arrays, which llvmpipe keeps in memory).
    var c00 = mat4x4<f32>();
    var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>();
    var c11 = mat4x4<f32>();

    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // 1024 values per tile, 16 per thread.
        for (var s = 0u; s < 16u; s++) {
            let e = t + s * THREADS;
            // A's contiguous axis is K unless transposed (then M).
            var r = e / TK;
            var kk = e % TK;
            if (p.trans_a != 0u) { r = e % TILE; kk = e / TILE; }
            tile_a[kk * 16u + r / 4u][r % 4u] = load_a(row0 + r, k0 + kk);
            // B's contiguous axis is N unless transposed (then K).
            var cc = e % TILE;
            var kb = e / TILE;
            if (p.trans_b != 0u) { cc = e / TK; kb = e % TK; }
            tile_b[kb * 16u + cc / 4u][cc % 4u] = load_b(k0 + kb, col0 + cc);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a0 = tile_a[kk * 16u + lid.y * 2u];
            let a1 = tile_a[kk * 16u + lid.y * 2u + 1u];
            let b0 = tile_b[kk * 16u + lid.x * 2u];
            let b1 = tile_b[kk * 16u + lid.x * 2u + 1u];
            c00 = outer_fma(a0, b0, c00);
            c01 = outer_fma(a0, b1, c01);
            c10 = outer_fma(a1, b0, c10);
            c11 = outer_fma(a1, b1, c11);
        }
        workgroupBarrier();
    }

    let row = row0 + lid.y * 8u;
    let col = col0 + lid.x * 8u;
    for (var i = 0u; i < 4u; i++) {
        store_row(row + i, col, c00[i]);
        store_row(row + i, col + 4u, c01[i]);
        store_row(row + 4u + i, col, c10[i]);
        store_row(row + 4u + i, col + 4u, c11[i]);
    }
}
