//! The cpu twin of the mixed-precision matmul (`src/backend/wgpu/matmul_f16.rs`): both operands
//! rounded to f16 (round to nearest even, overflow to infinity, as `half` converts), then the f32
//! matrix product. The reference the
//! wgpu kernel is tested against; training in f16 itself needs a device with shader-f16.

use half::f16;

use crate::error::Result;

/// Each value rounded to the nearest f16 and widened back to f32.
pub fn round_to_f16(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| f16::from_f32(v).to_f32()).collect()
}

/// As `cpu::matmul::matmul`, with f16 operands and f32 accumulation.
pub fn matmul_f16(
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
) -> Result<Vec<f32>> {
    super::matmul::matmul(
        &round_to_f16(a),
        &round_to_f16(b),
        m,
        k,
        n,
        trans_a,
        trans_b,
    )
}
