// Mixed precision: f32 -> f16 rounding of an operand (`to_f16`) and the matrix product of f16
// operands accumulated in f32 (`matmul_f16`). Needs the device feature SHADER_F16.
//
// `matmul_f16` is the kernel of matmul.wgsl (same tiling, flags, grid and edge handling; see the
// comments there) with one difference: op(A) and op(B) are read as f16, which halves their memory
// traffic, and widened to f32 when staged, so products and sums are f32. Keep the two in step.
// Bindings: 0 params {m, k, n, trans_a, trans_b}; 1 a (f16); 2 b (f16); 3 c [m * n] (f32).
//
// `to_f16` rounds each value to f16 (the device's conversion; round to nearest even on lavapipe,
// tested). Magnitudes beyond f16's largest finite value 65504 are converted as the infinity of
// their sign, because WGSL leaves out-of-range conversions indeterminate: an overflow must show,
// since it is what dynamic loss scaling watches for.
// Bindings: 0 params {n}; 1 src [n] (f32); 2 dst [n] (f16). Dispatch: ctx.grid(n, 256).

enable f16;

struct Params { m: u32, k: u32, n: u32, trans_a: u32, trans_b: u32 }
struct CastParams { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f16>;
@group(0) @binding(2) var<storage, read> b: array<f16>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@group(0) @binding(0) var<uniform> cast_p: CastParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f16>;

@compute @workgroup_size(256)
fn to_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= cast_p.n) { return; }
    let x = src[i];
    // Past 65504, convert the infinity of x's sign instead (IEEE conversions keep infinities).
    let inf = bitcast<f32>((bitcast<u32>(x) & 0x80000000u) | 0x7f800000u);
    dst[i] = f16(select(x, inf, abs(x) > 65504.0));
}

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
    if (p.trans_a != 0u) { return f32(a[kk * p.m + row]); }
    return f32(a[row * p.k + kk]);
}

// op(B)[kk, col], zero outside the matrix.
fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) { return 0.0; }
    if (p.trans_b != 0u) { return f32(b[col * p.k + kk]); }
    return f32(b[kk * p.n + col]);
}

// Up to four values of one row of C, starting at `col`, clipped to the matrix.
fn store_row(row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) { return; }
    let base = row * p.n + col;
    if (col < p.n) { c[base] = v.x; }
    if (col + 1u < p.n) { c[base + 1u] = v.y; }
    if (col + 2u < p.n) { c[base + 2u] = v.z; }
    if (col + 3u < p.n) { c[base + 3u] = v.w; }
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
fn matmul_f16(
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
