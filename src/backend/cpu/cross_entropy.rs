//! Row-wise log-softmax and the cross-entropy loss built on it. x, logits: [rows, v] (every
//! leading dimension flattened into rows); targets: [rows]. Sums over a row accumulate in f64.

use rayon::prelude::*;

use super::elementwise::{PAR_MIN, Rows, rows_of};
use super::simd::{self, Kernel};

/// (max, log sum_j exp(x_j - max)) of one row: log-sum-exp(row) = max + the second value. The
/// exponentials are [`simd::exp`]'s (vectorised; libm's made these ops mostly libm calls), summed
/// in f64. Call it inside [`simd::dispatch`] (its `mul_add`s are libm calls at the baseline).
#[inline(always)]
fn max_and_log_sum(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut acc = [0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += simd::exp(v - max) as f64;
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += simd::exp(v - max) as f64;
    }
    let total = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    (max, total.ln() as f32)
}

/// One row's output from its index and input row. Implement `row` as `#[inline(always)]`: it is
/// inlined into [`simd::dispatch`]'s AVX2 + FMA compilation.
trait Row: Sync {
    fn row(&self, r: usize, x: &[f32], out: &mut [f32]);
}

/// Applies `f` to every row of `v` values (blocks of rows, in parallel when the data is large).
fn per_row(x: &[f32], v: usize, f: impl Row) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    rows_of(&mut out, v, EachRow { x, v, f });
    out
}

/// A [`Row`] as the block loop `rows_of` runs.
struct EachRow<'a, F> {
    x: &'a [f32],
    v: usize,
    f: F,
}

impl<F: Row> Rows for EachRow<'_, F> {
    #[inline(always)]
    fn fill(&self, first: usize, block: &mut [f32]) {
        for (r, o) in block.chunks_exact_mut(self.v).enumerate() {
            let row = first + r;
            self.f.row(row, &self.x[row * self.v..][..self.v], o);
        }
    }
}

// ---- log_softmax ---------------------------------------------------------------------------------

/// y_j = x_j - max - log sum_k exp(x_k - max).
pub fn log_softmax(x: &[f32], v: usize) -> Vec<f32> {
    per_row(x, v, LogSoftmax)
}

struct LogSoftmax;

impl Row for LogSoftmax {
    #[inline(always)]
    fn row(&self, _: usize, xr: &[f32], o: &mut [f32]) {
        let (max, lse) = max_and_log_sum(xr);
        for (o, &x) in o.iter_mut().zip(xr) {
            *o = x - max - lse;
        }
    }
}

/// dy_j/dx_k = delta_jk - softmax_k, so dx_k = g_k - softmax_k * sum_j g_j.
pub fn log_softmax_backward(x: &[f32], g: &[f32], v: usize) -> Vec<f32> {
    per_row(x, v, LogSoftmaxBackward { g, v })
}

struct LogSoftmaxBackward<'a> {
    g: &'a [f32],
    v: usize,
}

impl Row for LogSoftmaxBackward<'_> {
    #[inline(always)]
    fn row(&self, r: usize, xr: &[f32], o: &mut [f32]) {
        let (max, lse) = max_and_log_sum(xr);
        let gr = &self.g[r * self.v..][..self.v];
        let gsum = gr.iter().map(|&a| a as f64).sum::<f64>() as f32;
        for ((o, &x), &g) in o.iter_mut().zip(xr).zip(gr) {
            *o = g - simd::exp(x - max - lse) * gsum;
        }
    }
}

// ---- cross_entropy -------------------------------------------------------------------------------

/// Whether row r counts towards the loss.
fn counted(target: u32, ignore_index: Option<u32>) -> bool {
    Some(target) != ignore_index
}

/// mean over counted rows of -log_softmax(logits)[r, target_r] = lse(row) - row[target]; 0 when
/// no row counts. Targets are in range (checked by the op).
pub fn cross_entropy(logits: &[f32], targets: &[u32], ignore_index: Option<u32>, v: usize) -> f32 {
    let row_loss = |r: usize| -> f64 {
        if !counted(targets[r], ignore_index) {
            return 0.0;
        }
        let xr = &logits[r * v..(r + 1) * v];
        let (max, lse) = simd::dispatch(LogSumExp(xr));
        (max as f64 + lse as f64) - xr[targets[r] as usize] as f64
    };
    let rows = targets.len();
    // Per-row losses in parallel, then one ordered sum, so the result never depends on scheduling.
    let losses: Vec<f64> = if logits.len() >= PAR_MIN {
        (0..rows).into_par_iter().map(row_loss).collect()
    } else {
        (0..rows).map(row_loss).collect()
    };
    let total: f64 = losses.iter().sum();
    let count = targets
        .iter()
        .filter(|&&t| counted(t, ignore_index))
        .count();
    if count == 0 {
        0.0
    } else {
        (total / count as f64) as f32
    }
}

/// [`max_and_log_sum`] of one row as a kernel of its own (also the rollout kernels' priors).
pub(super) struct LogSumExp<'a>(pub(super) &'a [f32]);

impl Kernel for LogSumExp<'_> {
    type Output = (f32, f32);
    #[inline(always)]
    fn run(self) -> (f32, f32) {
        max_and_log_sum(self.0)
    }
}

/// dlogits [rows, v] = (softmax(row) - onehot(target)) * g / count for counted rows, 0 for the
/// ignored ones (and everywhere when no row counts). `g` is the loss's gradient (a scalar).
pub fn cross_entropy_backward(
    logits: &[f32],
    targets: &[u32],
    ignore_index: Option<u32>,
    g: f32,
    v: usize,
) -> Vec<f32> {
    let count = targets
        .iter()
        .filter(|&&t| counted(t, ignore_index))
        .count();
    let scale = if count == 0 { 0.0 } else { g / count as f32 };
    per_row(
        logits,
        v,
        CrossEntropyBackward {
            targets,
            ignore_index,
            scale,
        },
    )
}

struct CrossEntropyBackward<'a> {
    targets: &'a [u32],
    ignore_index: Option<u32>,
    scale: f32,
}

impl Row for CrossEntropyBackward<'_> {
    #[inline(always)]
    fn row(&self, r: usize, xr: &[f32], o: &mut [f32]) {
        let target = self.targets[r];
        if !counted(target, self.ignore_index) {
            return; // already zero
        }
        let (max, lse) = max_and_log_sum(xr);
        for (o, &x) in o.iter_mut().zip(xr) {
            *o = simd::exp(x - max - lse) * self.scale;
        }
        o[target as usize] -= self.scale;
    }
}
