// Header of matmul.wgsl for mixed precision (needs the device feature SHADER_F16): f16 operands,
// which halves their memory traffic, and `to_f16`, the f32 -> f16 rounding of an operand. The
// product itself (`matmul`) is matmul.wgsl's, widening each operand to f32 as it is staged.
//
// `to_f16` rounds each value to f16 (the device's conversion; round to nearest even on lavapipe,
// tested). Magnitudes beyond f16's largest finite value 65504 are converted as the infinity of
// their sign, because WGSL leaves out-of-range conversions indeterminate: an overflow must show,
// since it is what dynamic loss scaling watches for.
// Bindings: 0 params {n}; 1 src [n] (f32); 2 dst [n] (f16). Dispatch: ctx.grid(n, 256).

enable f16;

alias Operand = f16;

struct CastParams { n: u32 }

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

