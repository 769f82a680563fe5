//! Elementwise unary ops and their backward passes. All shapes are flat `[n]`.

use rayon::prelude::*;

use super::binary::PAR_MIN;
use super::simd;

fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    if x.len() >= PAR_MIN {
        x.par_iter().map(|&v| f(v)).collect()
    } else {
        x.iter().map(|&v| f(v)).collect()
    }
}

fn map2(x: &[f32], g: &[f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Vec<f32> {
    if x.len() >= PAR_MIN {
        x.par_iter()
            .zip(g.par_iter())
            .map(|(&v, &d)| f(v, d))
            .collect()
    } else {
        x.iter().zip(g).map(|(&v, &d)| f(v, d)).collect()
    }
}

/// With the branch-free [`simd::exp`], so loops over it vectorise.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + simd::exp(-x))
}

/// softplus(x) = log(1 + e^x), linear past 20 as in PyTorch (threshold 20), so it never overflows.
pub fn softplus_scalar(x: f32) -> f32 {
    if x > 20.0 { x } else { x.exp().ln_1p() }
}

pub fn silu_scalar(x: f32) -> f32 {
    x * sigmoid(x)
}

pub fn silu(x: &[f32]) -> Vec<f32> {
    map(x, silu_scalar)
}

/// d silu/dx = s + x s (1 - s), s = sigmoid(x).
pub fn silu_backward(x: &[f32], g: &[f32]) -> Vec<f32> {
    map2(x, g, |v, d| {
        let s = sigmoid(v);
        d * (s + v * s * (1.0 - s))
    })
}

pub fn softplus(x: &[f32]) -> Vec<f32> {
    map(x, softplus_scalar)
}

/// d softplus/dx = sigmoid(x).
pub fn softplus_backward(x: &[f32], g: &[f32]) -> Vec<f32> {
    map2(x, g, |v, d| d * sigmoid(v))
}

pub fn exp(x: &[f32]) -> Vec<f32> {
    map(x, f32::exp)
}

pub fn scale(x: &[f32], c: f32) -> Vec<f32> {
    map(x, |v| v * c)
}
