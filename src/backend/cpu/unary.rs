//! Elementwise unary ops and their backward passes. All shapes are flat `[n]`.

use super::elementwise::{Binary, Unary, map, map2};
use super::simd;

/// With the branch-free [`simd::exp`], so loops over it vectorise.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + simd::exp(-x))
}

/// softplus(x) = log(1 + e^x) = max(x, 0) + ln(1 + e^-|x|), so the log's argument stays in [0, 1]
/// (see [`simd::ln_1p_unit`]); x itself past 20, as PyTorch does (threshold 20). Branch-free
/// ([`simd::exp`]) so loops over it vectorise.
#[inline(always)]
pub fn softplus_scalar(x: f32) -> f32 {
    let soft = x.max(0.0) + simd::ln_1p_unit(simd::exp(-x.abs()));
    if x > 20.0 { x } else { soft }
}

#[inline(always)]
pub fn silu_scalar(x: f32) -> f32 {
    x * sigmoid(x)
}

/// Declares a zero-sized (or parameterised) op type whose `apply` is inlined into the map's loop.
macro_rules! unary_op {
    ($name:ident $(($field:ty))?, |$s:ident, $x:ident| $body:expr) => {
        struct $name$(($field))?;
        impl Unary for $name {
            #[inline(always)]
            fn apply(&self, $x: f32) -> f32 {
                let $s = self;
                let _ = $s;
                $body
            }
        }
    };
}

macro_rules! binary_op {
    ($name:ident, |$x:ident, $g:ident| $body:expr) => {
        struct $name;
        impl Binary for $name {
            #[inline(always)]
            fn apply(&self, $x: f32, $g: f32) -> f32 {
                $body
            }
        }
    };
}

unary_op!(Silu, |_s, v| silu_scalar(v));
unary_op!(Softplus, |_s, v| softplus_scalar(v));
unary_op!(Exp, |_s, v| simd::exp(v));
unary_op!(Scale(f32), |s, v| v * s.0);
// d silu/dx = s + x s (1 - s), s = sigmoid(x).
binary_op!(SiluBackward, |v, d| {
    let s = sigmoid(v);
    d * (s + v * s * (1.0 - s))
});
// d softplus/dx = sigmoid(x).
binary_op!(SoftplusBackward, |v, d| d * sigmoid(v));

pub fn silu(x: &[f32]) -> Vec<f32> {
    map(x, Silu)
}

pub fn silu_backward(x: &[f32], g: &[f32]) -> Vec<f32> {
    map2(x, g, SiluBackward)
}

pub fn softplus(x: &[f32]) -> Vec<f32> {
    map(x, Softplus)
}

pub fn softplus_backward(x: &[f32], g: &[f32]) -> Vec<f32> {
    map2(x, g, SoftplusBackward)
}

pub fn exp(x: &[f32]) -> Vec<f32> {
    map(x, Exp)
}

pub fn scale(x: &[f32], c: f32) -> Vec<f32> {
    map(x, Scale(c))
}
