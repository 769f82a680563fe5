//! The fused AdamW update. param, grad, m, v: [n] -> new param, m, v: [n]. The formula and the
//! host-side factors are documented at `ops::adamw_step`.

use rayon::prelude::*;

use super::elementwise::PAR_MIN;
use crate::backend::params::{AdamWFactors, AdamWStep};

/// One element: (p, g, m, v) -> (p', m', v'), in the order the WGSL twin computes it.
fn update(p: f32, g: f32, m: f32, v: f32, s: &AdamWStep, f: &AdamWFactors) -> (f32, f32, f32) {
    let g = g * s.grad_scale;
    let p = p * f.decay;
    let m = s.beta1 * m + (1.0 - s.beta1) * g;
    let v = s.beta2 * v + (1.0 - s.beta2) * (g * g);
    let denom = v.sqrt() / f.bias_correction2_sqrt + s.eps;
    (p - f.step_size * (m / denom), m, v)
}

pub fn adamw_step(
    p: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    s: &AdamWStep,
    f: &AdamWFactors,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let one = |j: usize| {
        let (p2, m2, v2) = update(p[j], g[j], m[j], v[j], s, f);
        (p2, (m2, v2))
    };
    let (p2, (m2, v2)) = if p.len() >= PAR_MIN {
        (0..p.len()).into_par_iter().map(one).unzip()
    } else {
        (0..p.len()).map(one).unzip()
    };
    (p2, m2, v2)
}
