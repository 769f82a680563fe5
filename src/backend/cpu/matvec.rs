//! Products of a few rows by a weight stored [N, K] (PyTorch's Linear layout): C [M, N] = A [M, K]
//! W^T for M up to `DOT_ROWS`, as dot products that read each weight row from memory once and
//! keep it in L1 for all M rows. A decode step is such a product, and it is bound by the weight's
//! bytes: gemm, built for large products, first packs W into panels (another read and a write of
//! all of it per call), which made it the largest cost of a decode step. The weight may be f32 or
//! bf16 (`Widen`).

use rayon::prelude::*;

use super::simd::{self, Kernel};

/// Rows of A up to which dot products beat gemm. One row is bound by the weight bytes; each more
/// row adds 2 flops per weight element, so by a few rows the dots are bound by arithmetic, where
/// gemm's blocked kernel is faster.
pub const DOT_ROWS: usize = 4;

/// Weight rows per parallel task; products with fewer weight elements than `PAR_ELEMS` run on the
/// calling thread (waking the pool costs more than they do).
const ROWS_PER_TASK: usize = 32;
const PAR_ELEMS: usize = 1 << 16;

/// A weight element that widens to f32 exactly.
pub trait Widen: Copy + Send + Sync {
    fn widen(self) -> f32;
}

impl Widen for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

/// bfloat16 bits: the top half of an f32.
impl Widen for u16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits((self as u32) << 16)
    }
}

/// C [m, n] = A [m, k] W^T, W [n, k]. The caller checks the lengths.
pub fn rows_times_weight<W: Widen>(a: &[f32], w: &[W], m: usize, k: usize, n: usize) -> Vec<f32> {
    debug_assert!(a.len() == m * k && w.len() == n * k && k > 0);
    let task = |rows: &[W]| simd::dispatch_avx512(Dots { a, rows, k, m });
    let blocks: Vec<Vec<f32>> = if n * k >= PAR_ELEMS {
        w.par_chunks(ROWS_PER_TASK * k).map(task).collect()
    } else {
        w.chunks(ROWS_PER_TASK * k).map(task).collect()
    };
    // Each block holds [its weight rows j, rows i of A]; C is [i, j].
    let mut c = vec![0f32; m * n];
    for (block, values) in blocks.iter().enumerate() {
        for (jj, row) in values.chunks(m).enumerate() {
            let j = block * ROWS_PER_TASK + jj;
            for (i, &v) in row.iter().enumerate() {
                c[i * n + j] = v;
            }
        }
    }
    c
}

/// The dot products of a block of weight rows with every row of A: out [rows, m].
struct Dots<'a, W> {
    a: &'a [f32],
    rows: &'a [W],
    k: usize,
    m: usize,
}

impl<W: Widen> Kernel for Dots<'_, W> {
    type Output = Vec<f32>;
    #[inline(always)]
    fn run(self) -> Vec<f32> {
        let Dots { a, rows, k, m } = self;
        let mut out = Vec::with_capacity(rows.len() / k * m);
        for w in rows.chunks_exact(k) {
            for x in a.chunks_exact(k) {
                out.push(dot(x, w));
            }
        }
        out
    }
}

/// sum_t x[t] * w[t] in 32 running sums (two AVX-512 registers of fused multiply-adds, four AVX2
/// ones).
#[inline(always)]
fn dot<W: Widen>(x: &[f32], w: &[W]) -> f32 {
    const LANES: usize = 32;
    let mut acc = [0f32; LANES];
    let (xs, x_tail) = x.as_chunks::<LANES>();
    let (ws, w_tail) = w.as_chunks::<LANES>();
    for (xc, wc) in xs.iter().zip(ws) {
        for l in 0..LANES {
            acc[l] = xc[l].mul_add(wc[l].widen(), acc[l]);
        }
    }
    let mut tail = 0f32;
    for (&xv, &wv) in x_tail.iter().zip(w_tail) {
        tail = xv.mul_add(wv.widen(), tail);
    }
    acc.iter().sum::<f32>() + tail
}
