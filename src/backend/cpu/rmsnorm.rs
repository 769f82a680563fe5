//! RMSNorm over the last dimension. x: [rows, d] (all leading dimensions flattened into rows),
//! weight: [d], d >= 1 (checked by the op). The sum of squares accumulates in f64 so this oracle is more exact than the kernel
//! it checks; everything else is f32, as HF's `MambaRMSNorm` computes in f32.

use rayon::prelude::*;

use super::elementwise::{PAR_MIN, for_each_piece};
use super::reduce::column_sums;

/// 1 / sqrt(mean(row^2) + eps).
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
    let mut out = vec![0.0; x.len()];
    for_each_piece(&mut out, d, |i, o| {
        let xr = &x[i * d..][..d];
        let r = inv_rms(xr, eps);
        for j in 0..d {
            o[j] = xr[j] * r * weight[j];
        }
    });
    out
}

/// Gradients (dx [rows, d], dweight [d]) from the output's gradient g [rows, d].
///
/// With r = (mean(x^2) + eps)^(-1/2) and y_j = x_j r w_j, dr/dx_k = -r^3 x_k / d, so
///   dx_k = r w_k g_k - (r^3 / d) x_k sum_j g_j w_j x_j,
///   dweight_j = sum over rows of g_j x_j r.
pub fn rms_norm_backward(
    x: &[f32],
    weight: &[f32],
    g: &[f32],
    d: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / d;
    let mut dx = vec![0.0; x.len()];
    // Per-row inverse norms first, then dweight as column sums in row order (deterministic).
    let rs: Vec<f32> = if x.len() >= PAR_MIN {
        x.par_chunks(d).map(|xr| inv_rms(xr, eps)).collect()
    } else {
        x.chunks(d).map(|xr| inv_rms(xr, eps)).collect()
    };
    for_each_piece(&mut dx, d, |i, o| {
        let (xr, gr, r) = (&x[i * d..(i + 1) * d], &g[i * d..(i + 1) * d], rs[i]);
        let dot = sum_f64(d, |j| gr[j] as f64 * weight[j] as f64 * xr[j] as f64);
        let c = r * r * r * (dot / d as f64) as f32;
        for k in 0..d {
            o[k] = r * weight[k] * gr[k] - c * xr[k];
        }
    });
    let dw = column_sums(rows, d, |r, j| (g[r * d + j] * x[r * d + j] * rs[r]) as f64);
    (dx, dw)
}
