//! Row-wise log-softmax and the cross-entropy loss built on it. x, logits: [rows, v] (every
//! leading dimension flattened into rows); targets: [rows]. Sums over a row accumulate in f64.

use rayon::prelude::*;

use super::elementwise::PAR_MIN;

/// (max, log sum_j exp(x_j - max)) of one row: log-sum-exp(row) = max + the second value.
fn max_and_log_sum(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
    (max, total.ln() as f32)
}

/// Applies `f(row index, input row, output row)` to every row, in parallel when the data is large.
fn per_row(x: &[f32], v: usize, f: impl Fn(usize, &[f32], &mut [f32]) + Sync + Send) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    if x.len() >= PAR_MIN {
        out.par_chunks_mut(v)
            .zip(x.par_chunks(v))
            .enumerate()
            .for_each(|(r, (o, xr))| f(r, xr, o));
    } else {
        out.chunks_mut(v)
            .zip(x.chunks(v))
            .enumerate()
            .for_each(|(r, (o, xr))| f(r, xr, o));
    }
    out
}

// ---- log_softmax ---------------------------------------------------------------------------------

/// y_j = x_j - max - log sum_k exp(x_k - max).
pub fn log_softmax(x: &[f32], v: usize) -> Vec<f32> {
    per_row(x, v, |_, xr, o| {
        let (max, lse) = max_and_log_sum(xr);
        for j in 0..v {
            o[j] = xr[j] - max - lse;
        }
    })
}

/// dy_j/dx_k = delta_jk - softmax_k, so dx_k = g_k - softmax_k * sum_j g_j.
pub fn log_softmax_backward(x: &[f32], g: &[f32], v: usize) -> Vec<f32> {
    per_row(x, v, |r, xr, o| {
        let (max, lse) = max_and_log_sum(xr);
        let gr = &g[r * v..(r + 1) * v];
        let gsum = gr.iter().map(|&a| a as f64).sum::<f64>() as f32;
        for k in 0..v {
            o[k] = gr[k] - (xr[k] - max - lse).exp() * gsum;
        }
    })
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
        let (max, lse) = max_and_log_sum(xr);
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
    per_row(logits, v, |r, xr, o| {
        if !counted(targets[r], ignore_index) {
            return; // already zero
        }
        let (max, lse) = max_and_log_sum(xr);
        for j in 0..v {
            let onehot = if j == targets[r] as usize { 1.0 } else { 0.0 };
            o[j] = ((xr[j] - max - lse).exp() - onehot) * scale;
        }
    })
}
