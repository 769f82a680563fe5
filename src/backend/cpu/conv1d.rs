//! Causal depthwise conv1d, channels last. x: [b, l, c], weight: [c, k], bias: [c] -> y: [b, l, c]
//!   y[b, t, c] = bias[c] + sum_{j<k} weight[c, j] * x[b, t - (k-1) + j, c]   (x = 0 before t = 0),
//! which is PyTorch's `Conv1d(groups=c, padding=k-1)` with only the first l outputs kept, as HF's
//! `MambaMixer.slow_forward` does (`self.conv1d(hidden_states)[..., :seq_len]`).

use rayon::prelude::*;

use super::elementwise::PAR_MIN;

/// Sizes of one call: batch, length, channels, kernel width.
#[derive(Clone, Copy, Debug)]
pub struct ConvDims {
    pub b: usize,
    pub l: usize,
    pub c: usize,
    pub k: usize,
}

/// Forward. `bias` may be absent (HF `use_conv_bias = false`).
pub fn causal_conv1d(x: &[f32], weight: &[f32], bias: Option<&[f32]>, dims: ConvDims) -> Vec<f32> {
    let ConvDims { l, c, k, .. } = dims;
    let mut y = vec![0.0; x.len()];
    // One (batch, time) row of c channels at a time; `row` is the flat index b * l + t.
    let fill = |(row, yr): (usize, &mut [f32])| {
        let t = row % l;
        for ch in 0..c {
            let mut acc = bias.map_or(0.0, |bv| bv[ch]);
            for j in 0..k {
                // Input time t - (k-1) + j; taps before the sequence start read zero padding.
                if t + j >= k - 1 {
                    let src = row + j - (k - 1);
                    acc += weight[ch * k + j] * x[src * c + ch];
                }
            }
            yr[ch] = acc;
        }
    };
    if x.len() >= PAR_MIN {
        y.par_chunks_mut(c).enumerate().for_each(fill);
    } else {
        y.chunks_mut(c).enumerate().for_each(fill);
    }
    y
}

/// dx: [b, l, c] from the output's gradient g: [b, l, c]. Each input time s feeds outputs
/// t = s + (k-1) - j for the taps j, as long as t < l:
///   dx[b, s, c] = sum_j weight[c, j] * g[b, s + (k-1) - j, c].
pub fn causal_conv1d_backward_x(g: &[f32], weight: &[f32], dims: ConvDims) -> Vec<f32> {
    let ConvDims { l, c, k, .. } = dims;
    let mut dx = vec![0.0; g.len()];
    let fill = |(row, dr): (usize, &mut [f32])| {
        let s = row % l;
        for ch in 0..c {
            let mut acc = 0.0;
            for j in 0..k {
                if s + (k - 1) - j < l {
                    let dst = row + (k - 1) - j;
                    acc += weight[ch * k + j] * g[dst * c + ch];
                }
            }
            dr[ch] = acc;
        }
    };
    if g.len() >= PAR_MIN {
        dx.par_chunks_mut(c).enumerate().for_each(fill);
    } else {
        dx.chunks_mut(c).enumerate().for_each(fill);
    }
    dx
}

/// (dweight [c, k], dbias [c]), reduced over batch and time:
///   dweight[c, j] = sum_{b,t} g[b, t, c] * x[b, t - (k-1) + j, c],   dbias[c] = sum_{b,t} g[b, t, c].
/// Each batch is summed in parallel into f64 partials, which are then added in batch order, so the
/// result does not depend on thread timing.
pub fn causal_conv1d_backward_params(x: &[f32], g: &[f32], dims: ConvDims) -> (Vec<f32>, Vec<f32>) {
    let ConvDims { b, l, c, k } = dims;
    let per_batch = |bi: usize| {
        // [c * k] weight partials, then [c] bias partials.
        let mut acc = vec![0f64; c * k + c];
        for t in 0..l {
            let row = bi * l + t;
            for ch in 0..c {
                let gv = g[row * c + ch] as f64;
                for j in 0..k {
                    if t + j >= k - 1 {
                        acc[ch * k + j] += gv * x[(row + j - (k - 1)) * c + ch] as f64;
                    }
                }
                acc[c * k + ch] += gv;
            }
        }
        acc
    };
    let partials: Vec<Vec<f64>> = if x.len() >= PAR_MIN {
        (0..b).into_par_iter().map(per_batch).collect()
    } else {
        (0..b).map(per_batch).collect()
    };
    let mut total = vec![0f64; c * k + c];
    for p in &partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    let dweight = total[..c * k].iter().map(|&v| v as f32).collect();
    let dbias = total[c * k..].iter().map(|&v| v as f32).collect();
    (dweight, dbias)
}
