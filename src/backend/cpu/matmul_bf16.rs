//! Products with bf16 weights, for inference: C [M, N] = A [M, K] W^T with W [N, K] stored as
//! bfloat16 (the top 16 bits of an f32) and every product and sum in f32. Decode is bound by the
//! bytes of weights it reads per token; bf16 halves them.
//!
//! A bf16 value widens to f32 exactly by a 16-bit shift, so the result equals the f32 product with
//! the weights rounded to bf16, up to summation order. A few rows (a decode step) run as dot
//! products, each weight row read from memory once and kept in L1 for all M rows of A; more rows
//! (a prompt, a wave of many states) widen W to f32 once and use the f32 gemm, so bf16 weights pay
//! off for single-stream decode, not for batches.

use rayon::prelude::*;

use super::matmul::matmul;
use super::simd::{self, Kernel};
use crate::error::{Result, shape_err};

/// Rows of A up to which the dot-product path runs. One row is bound by the weight bytes, where
/// bf16 halves the time; each further row adds 2 flops per weight element, so by a few rows the
/// dots are bound by arithmetic, and widening W to f32 once for gemm's blocked kernel is faster.
const DOT_ROWS: usize = 4;
/// Weight rows per parallel task.
const ROWS_PER_TASK: usize = 32;

/// The bf16 bits of each value, rounded to nearest even (NaN stays NaN), as `half::bf16` does.
pub fn to_bf16(x: &[f32]) -> Vec<u16> {
    x.iter()
        .map(|&v| half::bf16::from_f32(v).to_bits())
        .collect()
}

/// bf16 bits to f32 (exact).
#[inline(always)]
pub fn widen(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// C [m, n] = A [m, k] W^T, W [n, k] in bf16 bits.
pub fn matmul_bf16_weights(a: &[f32], w: &[u16], m: usize, k: usize, n: usize) -> Result<Vec<f32>> {
    let elems = |r: usize, c: usize| r.checked_mul(c);
    if elems(m, k) != Some(a.len()) || elems(n, k) != Some(w.len()) || elems(m, n).is_none() {
        return shape_err(
            "matmul_bf16_weights",
            format!(
                "cpu kernel got {} and {} values for (M, K, N) = ({m}, {k}, {n})",
                a.len(),
                w.len()
            ),
        );
    }
    if m > DOT_ROWS {
        let wide: Vec<f32> = w.iter().map(|&b| widen(b)).collect();
        return matmul(a, &wide, m, k, n, false, true);
    }
    // Each task: a block of weight rows j, every row i of A; its results [j, i] go to C[i, j].
    let blocks: Vec<Vec<f32>> = w
        .par_chunks(ROWS_PER_TASK * k.max(1))
        .map(|rows| simd::dispatch(Dots { a, rows, k, m }))
        .collect();
    let mut c = vec![0f32; m * n];
    for (block, values) in blocks.iter().enumerate() {
        for (jj, row) in values.chunks(m.max(1)).enumerate() {
            let j = block * ROWS_PER_TASK + jj;
            for (i, &v) in row.iter().enumerate() {
                c[i * n + j] = v;
            }
        }
    }
    Ok(c)
}

/// The dot products of a block of weight rows with every row of A: out [rows, m].
struct Dots<'a> {
    a: &'a [f32],
    rows: &'a [u16],
    k: usize,
    m: usize,
}

impl Kernel for Dots<'_> {
    type Output = Vec<f32>;
    #[inline(always)]
    fn run(self) -> Vec<f32> {
        let Dots { a, rows, k, m } = self;
        let mut out = Vec::with_capacity(rows.len() / k.max(1) * m);
        for w in rows.chunks_exact(k.max(1)) {
            for x in a.chunks_exact(k.max(1)) {
                out.push(dot(x, w));
            }
        }
        out
    }
}

/// sum_t x[t] * widen(w[t]) in 16 running sums (two AVX2 registers of fused multiply-adds).
#[inline(always)]
fn dot(x: &[f32], w: &[u16]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let (xs, x_tail) = x.as_chunks::<LANES>();
    let (ws, w_tail) = w.as_chunks::<LANES>();
    for (xc, wc) in xs.iter().zip(ws) {
        for l in 0..LANES {
            acc[l] = xc[l].mul_add(widen(wc[l]), acc[l]);
        }
    }
    let mut tail = 0f32;
    for (&xv, &wv) in x_tail.iter().zip(w_tail) {
        tail = xv.mul_add(widen(wv), tail);
    }
    acc.iter().sum::<f32>() + tail
}
