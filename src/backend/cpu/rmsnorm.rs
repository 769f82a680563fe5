//! RMSNorm over the last dimension. x: [rows, d] (all leading dimensions flattened into rows),
//! weight: [d], d >= 1 (checked by the op). The sum of squares accumulates in f64 so this oracle is more exact than the kernel
//! it checks; everything else is f32, as HF's `MambaRMSNorm` computes in f32.

use std::mem::MaybeUninit;

use super::elementwise::{ROWS, filled, for_each_piece, for_each_piece_with};
use super::simd::{self, Kernel};

/// 1 / sqrt(mean(row^2) + eps).
#[inline(always)]
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ss = sum_f64(row.len(), |j| row[j] as f64 * row[j] as f64);
    1.0 / ((ss / row.len() as f64) as f32 + eps).sqrt()
}

/// The sum of term(0..n) in f64, in eight interleaved partial sums: one running sum is a chain
/// of dependent adds (4 cycles each), eight keep the adder busy and vectorise.
#[inline(always)]
fn sum_f64(n: usize, term: impl Fn(usize) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let whole = n - n % 8;
    for j0 in (0..whole).step_by(8) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += term(j0 + l);
        }
    }
    for (l, j) in (whole..n).enumerate() {
        acc[l] += term(j);
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// y[r, j] = x[r, j] * inv_rms(x[r]) * weight[j].
pub fn rms_norm(x: &[f32], weight: &[f32], d: usize, eps: f32) -> Vec<f32> {
    filled(x.len(), |out| {
        for_each_piece(out, ROWS * d, |i, out| {
            let x = &x[i * ROWS * d..][..out.len()];
            simd::dispatch(Forward {
                x,
                weight,
                out,
                eps,
            })
        })
    })
}

/// The forward of a block of whole rows.
struct Forward<'a> {
    x: &'a [f32],
    weight: &'a [f32],
    out: &'a mut [MaybeUninit<f32>],
    eps: f32,
}

impl Kernel for Forward<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let d = self.weight.len();
        for (xr, o) in self.x.chunks_exact(d).zip(self.out.chunks_exact_mut(d)) {
            let r = inv_rms(xr, self.eps);
            for ((o, &xv), &w) in o.iter_mut().zip(xr).zip(self.weight) {
                o.write(xv * r * w);
            }
        }
    }
}

/// Gradients (dx [rows, d], dweight [d]) from the output's gradient g [rows, d].
///
/// With r = (mean(x^2) + eps)^(-1/2) and y_j = x_j r w_j, dr/dx_k = -r^3 x_k / d, so
///   dx_k = r w_k g_k - (r^3 / d) x_k sum_j g_j w_j x_j,
///   dweight_j = sum over rows of g_j x_j r.
/// dweight is summed in f64 per block of `ROWS` rows in the same pass as dx, then over the blocks
/// in order (deterministic).
pub fn rms_norm_backward(
    x: &[f32],
    weight: &[f32],
    g: &[f32],
    d: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut partials = vec![Vec::new(); (x.len() / d).div_ceil(ROWS)];
    let dx = filled(x.len(), |out| {
        for_each_piece_with(out, ROWS * d, &mut partials, |i, out, dw| {
            let at = i * ROWS * d;
            *dw = simd::dispatch(Backward {
                x: &x[at..][..out.len()],
                g: &g[at..][..out.len()],
                weight,
                out,
                eps,
            })
        })
    });
    let mut dw = vec![0f64; d];
    for p in &partials {
        for (a, v) in dw.iter_mut().zip(p) {
            *a += v;
        }
    }
    (dx, dw.into_iter().map(|v| v as f32).collect())
}

/// The backward of a block of whole rows: writes their dx, returns their dweight terms' sums.
struct Backward<'a> {
    x: &'a [f32],
    g: &'a [f32],
    weight: &'a [f32],
    out: &'a mut [MaybeUninit<f32>],
    eps: f32,
}

impl Kernel for Backward<'_> {
    type Output = Vec<f64>;
    #[inline(always)]
    fn run(self) -> Vec<f64> {
        let d = self.weight.len();
        let w = self.weight;
        let mut dw = vec![0f64; d];
        let rows = self.x.chunks_exact(d).zip(self.g.chunks_exact(d));
        for ((xr, gr), o) in rows.zip(self.out.chunks_exact_mut(d)) {
            let r = inv_rms(xr, self.eps);
            let dot = sum_f64(d, |j| gr[j] as f64 * w[j] as f64 * xr[j] as f64);
            let c = r * r * r * (dot / d as f64) as f32;
            for k in 0..d {
                o[k].write(r * w[k] * gr[k] - c * xr[k]);
                dw[k] += (gr[k] * xr[k] * r) as f64;
            }
        }
        dw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_in_parallel_row_blocks_matches_plain_loops() {
        // Enough rows that the blocks run in parallel, and a ragged last block.
        let (rows, d) = (1000, 40);
        let val = |i: usize, s: usize| ((i * s) % 997) as f32 / 498.5 - 1.0;
        let x: Vec<f32> = (0..rows * d).map(|i| val(i, 7919)).collect();
        let g: Vec<f32> = (0..rows * d).map(|i| val(i, 104_729)).collect();
        let w: Vec<f32> = (0..d).map(|j| 0.5 + j as f32 / d as f32).collect();
        let (dx, dw) = rms_norm_backward(&x, &w, &g, d, 1e-5);
        let mut want_dw = vec![0f64; d];
        for r in 0..rows {
            let (xr, gr) = (&x[r * d..][..d], &g[r * d..][..d]);
            let ms = xr.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
            let inv = 1.0 / (ms + 1e-5).sqrt();
            let dot: f64 = (0..d).map(|j| (gr[j] * w[j] * xr[j]) as f64).sum();
            for k in 0..d {
                let want =
                    inv * (w[k] * gr[k]) as f64 - inv.powi(3) * dot / d as f64 * xr[k] as f64;
                assert!((dx[r * d + k] as f64 - want).abs() < 1e-5, "dx[{r}, {k}]");
                want_dw[k] += (gr[k] * xr[k]) as f64 * inv;
            }
        }
        for k in 0..d {
            assert!((dw[k] as f64 - want_dw[k]).abs() < 1e-3, "dweight[{k}]");
        }
        assert_eq!(
            rms_norm_backward(&x, &w, &g, d, 1e-5).1,
            dw,
            "deterministic"
        );
    }
}
