//! Hierarchical policy fusion: a softmax-weighted sum of the layers' outputs.
//! xs: [layers, m] (each layer's output flattened to m values), logits: [layers] -> out: [m].
//! Softmax and dot products accumulate in f64 so this oracle is more exact than the kernel.

use rayon::prelude::*;

use super::elementwise::PAR_MIN;

/// softmax(logits), max-subtracted.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = logits.iter().map(|&v| ((v - max) as f64).exp()).collect();
    let total: f64 = e.iter().sum();
    e.iter().map(|&v| (v / total) as f32).collect()
}

/// out[n] = sum_i s_i * xs[i, n] with s = softmax(logits).
pub fn layer_mix(xs: &[f32], logits: &[f32], m: usize) -> Vec<f32> {
    let s = softmax(logits);
    let at = |n: usize| {
        s.iter()
            .enumerate()
            .map(|(i, &si)| si * xs[i * m + n])
            .sum::<f32>()
    };
    if xs.len() >= PAR_MIN {
        (0..m).into_par_iter().map(at).collect()
    } else {
        (0..m).map(at).collect()
    }
}

/// (dxs [layers, m], dlogits [layers]) from the output's gradient g [m]:
///   dxs[i, n] = s_i * g[n],
///   dlogits_i = sum_j (d out / d s_j) (d s_j / d logit_i) = s_i * (<g, xs_i> - sum_j s_j <g, xs_j>),
/// using d s_j / d logit_i = s_j (delta_ij - s_i).
pub fn layer_mix_backward(xs: &[f32], logits: &[f32], g: &[f32], m: usize) -> (Vec<f32>, Vec<f32>) {
    let s = softmax(logits);
    let dx = |idx: usize| s[idx / m] * g[idx % m];
    let dxs: Vec<f32> = if xs.len() >= PAR_MIN {
        (0..xs.len()).into_par_iter().map(dx).collect()
    } else {
        (0..xs.len()).map(dx).collect()
    };
    let dot = |i: usize| -> f64 {
        xs[i * m..(i + 1) * m]
            .iter()
            .zip(g)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum()
    };
    let dots: Vec<f64> = if xs.len() >= PAR_MIN {
        (0..s.len()).into_par_iter().map(dot).collect()
    } else {
        (0..s.len()).map(dot).collect()
    };
    let mean: f64 = s.iter().zip(&dots).map(|(&si, &d)| si as f64 * d).sum();
    let dlogits = s
        .iter()
        .zip(&dots)
        .map(|(&si, &d)| (si as f64 * (d - mean)) as f32)
        .collect();
    (dxs, dlogits)
}
