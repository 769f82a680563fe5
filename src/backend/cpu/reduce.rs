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

/// x: [rows, cols] -> [cols], summing over rows: accumulated in f64 in row order, so the result
/// does not depend on how the columns are split; blocks of columns run in parallel when the array
/// is large (a column sum on one thread left the other core idle).
pub fn sum_columns(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 64;
    let block_sums = |(b, out): (usize, &mut [f32])| {
        let j0 = b * BLOCK;
        let mut acc = [0f64; BLOCK];
        let acc = &mut acc[..out.len()];
        for r in 0..rows {
            let row = &x[r * cols + j0..][..acc.len()];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v as f64;
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = *a as f32;
        }
    };
    let mut out = vec![0f32; cols];
    if rows * cols >= PAR_MIN {
        out.par_chunks_mut(BLOCK).enumerate().for_each(block_sums);
    } else {
        out.chunks_mut(BLOCK).enumerate().for_each(block_sums);
    }
    out
}

/// x: [nx] repeated to [n] (n a multiple of nx).
pub fn expand(x: &[f32], n: usize) -> Vec<f32> {
    (0..n).map(|i| x[i % x.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_sums_in_parallel_blocks_equal_the_sums_in_row_order() {
        let (rows, cols) = (700, 131);
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
            .collect();
        let got = sum_columns(&x, rows, cols);
        for j in [0, 63, 64, 130] {
            let want: f64 = (0..rows).map(|r| x[r * cols + j] as f64).sum();
            assert_eq!(got[j], want as f32, "column {j}");
        }
    }
}
