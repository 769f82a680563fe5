//! Products with bf16 weights, for inference: C [M, N] = A [M, K] W^T with W [N, K] stored as
//! bfloat16 (the top 16 bits of an f32) and every product and sum in f32. Decode is bound by the
//! bytes of weights it reads per token; bf16 halves them.
//!
//! A bf16 value widens to f32 exactly by a 16-bit shift, so the result equals the f32 product with
//! the weights rounded to bf16, up to summation order. A few rows (a decode step) run as dot
//! products (`matvec.rs`); more rows (a prompt, a wave of many states) widen W to f32 once and use
//! the f32 gemm, so bf16 weights pay off for single-stream decode, not for batches.

use super::matmul::{check_lengths, matmul};
use super::matvec::{DOT_ROWS, Widen, rows_times_weight};
use crate::error::Result;

/// The bf16 bits of each value, rounded to nearest even (NaN stays NaN), as `half::bf16` does.
pub fn to_bf16(x: &[f32]) -> Vec<u16> {
    x.iter()
        .map(|&v| half::bf16::from_f32(v).to_bits())
        .collect()
}

/// C [m, n] = A [m, k] W^T, W [n, k] in bf16 bits.
pub fn matmul_bf16_weights(a: &[f32], w: &[u16], m: usize, k: usize, n: usize) -> Result<Vec<f32>> {
    check_lengths("matmul_bf16_weights", a.len(), w.len(), m, k, n)?;
    if m > DOT_ROWS || k == 0 {
        let wide: Vec<f32> = w.iter().map(|&b| b.widen()).collect();
        return matmul(a, &wide, m, k, n, false, true);
    }
    Ok(rows_times_weight(a, w, m, k, n))
}
