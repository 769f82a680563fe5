//! Reductions. Sums accumulate in f64 so the cpu oracle is more exact than any kernel it checks.

use rayon::prelude::*;

use super::elementwise::PAR_MIN;

/// sum_i x[i] (or of x[i]^2 when `square`).
pub fn sum(x: &[f32], square: bool) -> f32 {
    let f = |v: &f32| {
        if square {
            (*v as f64) * (*v as f64)
        } else {
            *v as f64
        }
    };
    let total: f64 = if x.len() >= PAR_MIN {
        x.par_iter().map(f).sum()
    } else {
        x.iter().map(f).sum()
    };
    total as f32
}

/// x: [rows, cols] -> [cols], summing over rows.
pub fn sum_columns(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut acc = vec![0f64; cols];
    for r in 0..rows {
        for (a, &v) in acc.iter_mut().zip(&x[r * cols..(r + 1) * cols]) {
            *a += v as f64;
        }
    }
    acc.into_iter().map(|v| v as f32).collect()
}

/// x: [nx] repeated to [n] (n a multiple of nx).
pub fn expand(x: &[f32], n: usize) -> Vec<f32> {
    (0..n).map(|i| x[i % x.len()]).collect()
}
