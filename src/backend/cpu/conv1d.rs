//! Causal depthwise conv1d, channels last. x: [b, l, c], weight: [c, k], bias: [c] -> y: [b, l, c]
//!   y[b, t, c] = bias[c] + sum_{j<k} weight[c, j] * x[b, t - (k-1) + j, c]   (x = 0 before t = 0),
//! which is PyTorch's `Conv1d(groups=c, padding=k-1)` with only the first l outputs kept, as HF's
//! `MambaMixer.slow_forward` does (`self.conv1d(hidden_states)[..., :seq_len]`).

use rayon::prelude::*;

use super::elementwise::{PAR_MIN, Rows, rows_of};
use super::simd::{self, Kernel};
use crate::backend::params::ConvDims;

/// weight [c, k] -> [k, c], so one tap's weights are contiguous over the channels.
fn taps_major(weight: &[f32], c: usize, k: usize) -> Vec<f32> {
    let mut t = vec![0f32; c * k];
    for ch in 0..c {
        for j in 0..k {
            t[j * c + ch] = weight[ch * k + j];
        }
    }
    t
}

/// Forward. `bias` may be absent (HF `use_conv_bias = false`).
pub fn causal_conv1d(x: &[f32], weight: &[f32], bias: Option<&[f32]>, dims: ConvDims) -> Vec<f32> {
    let w = taps_major(weight, dims.c, dims.k);
    let mut y = vec![0.0; x.len()];
    rows_of(
        &mut y,
        dims.c,
        Forward {
            x,
            w: &w,
            bias,
            dims,
        },
    );
    y
}

struct Forward<'a> {
    x: &'a [f32],
    /// [k, c]
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    dims: ConvDims,
}

impl Rows for Forward<'_> {
    #[inline(always)]
    fn fill(&self, first: usize, block: &mut [f32]) {
        let ConvDims { l, c, k, .. } = self.dims;
        for (r, yr) in block.chunks_exact_mut(c).enumerate() {
            let row = first + r;
            let t = row % l;
            if let Some(bias) = self.bias {
                yr.copy_from_slice(bias);
            }
            // Input time t - (k-1) + j; taps before the sequence start read zero padding.
            for j in (k - 1).saturating_sub(t)..k {
                let xr = &self.x[(row + j - (k - 1)) * c..][..c];
                let wj = &self.w[j * c..][..c];
                for ((y, &wv), &xv) in yr.iter_mut().zip(wj).zip(xr) {
                    *y = wv.mul_add(xv, *y);
                }
            }
        }
    }
}

/// dx: [b, l, c] from the output's gradient g: [b, l, c]. Each input time s feeds outputs
/// t = s + (k-1) - j for the taps j, as long as t < l:
///   dx[b, s, c] = sum_j weight[c, j] * g[b, s + (k-1) - j, c].
pub fn causal_conv1d_backward_x(g: &[f32], weight: &[f32], dims: ConvDims) -> Vec<f32> {
    let w = taps_major(weight, dims.c, dims.k);
    let mut dx = vec![0.0; g.len()];
    rows_of(&mut dx, dims.c, BackwardX { g, w: &w, dims });
    dx
}

struct BackwardX<'a> {
    g: &'a [f32],
    /// [k, c]
    w: &'a [f32],
    dims: ConvDims,
}

impl Rows for BackwardX<'_> {
    #[inline(always)]
    fn fill(&self, first: usize, block: &mut [f32]) {
        let ConvDims { l, c, k, .. } = self.dims;
        for (r, dr) in block.chunks_exact_mut(c).enumerate() {
            let row = first + r;
            let s = row % l;
            // Output time s + (k-1) - j must be < l: j >= s + k - l.
            for j in (s + k).saturating_sub(l)..k {
                let gr = &self.g[(row + (k - 1) - j) * c..][..c];
                let wj = &self.w[j * c..][..c];
                for ((d, &wv), &gv) in dr.iter_mut().zip(wj).zip(gr) {
                    *d = wv.mul_add(gv, *d);
                }
            }
        }
    }
}

/// (dweight [c, k], dbias [c]), reduced over batch and time:
///   dweight[c, j] = sum_{b,t} g[b, t, c] * x[b, t - (k-1) + j, c],   dbias[c] = sum_{b,t} g[b, t, c].
/// Each batch is summed in parallel into f64 partials, which are then added in batch order, so the
/// result does not depend on thread timing.
pub fn causal_conv1d_backward_params(x: &[f32], g: &[f32], dims: ConvDims) -> (Vec<f32>, Vec<f32>) {
    let ConvDims { b, c, k, .. } = dims;
    let per_batch = |bi: usize| simd::dispatch(ParamSums { x, g, bi, dims });
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
    let mut dweight = vec![0f32; c * k];
    for j in 0..k {
        for ch in 0..c {
            dweight[ch * k + j] = total[j * c + ch] as f32;
        }
    }
    let dbias = total[c * k..].iter().map(|&v| v as f32).collect();
    (dweight, dbias)
}

/// One batch's f64 partial sums: [k, c] weight partials (tap-major, so the loop over channels is
/// contiguous and vectorises), then [c] bias partials.
struct ParamSums<'a> {
    x: &'a [f32],
    g: &'a [f32],
    bi: usize,
    dims: ConvDims,
}

impl Kernel for ParamSums<'_> {
    type Output = Vec<f64>;
    #[inline(always)]
    fn run(self) -> Vec<f64> {
        let ConvDims { l, c, k, .. } = self.dims;
        let mut acc = vec![0f64; c * k + c];
        let (acc_w, acc_b) = acc.split_at_mut(c * k);
        for t in 0..l {
            let row = self.bi * l + t;
            let gr = &self.g[row * c..][..c];
            for j in (k - 1).saturating_sub(t)..k {
                let xr = &self.x[(row + j - (k - 1)) * c..][..c];
                for ((a, &gv), &xv) in acc_w[j * c..][..c].iter_mut().zip(gr).zip(xr) {
                    *a += gv as f64 * xv as f64;
                }
            }
            for (a, &gv) in acc_b.iter_mut().zip(gr) {
                *a += gv as f64;
            }
        }
        acc
    }
}
