//! Elementwise binary ops. `a: [n]`, `b: [nb]` with `n % nb == 0`; `b` repeats over `a`'s leading
//! dimensions (a bias over rows, or a scalar when `nb == 1`).

use super::elementwise::{Binary, map_broadcast};

struct Add;
impl Binary for Add {
    #[inline(always)]
    fn apply(&self, x: f32, y: f32) -> f32 {
        x + y
    }
}

struct Mul;
impl Binary for Mul {
    #[inline(always)]
    fn apply(&self, x: f32, y: f32) -> f32 {
        x * y
    }
}

pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    map_broadcast(a, b, Add)
}

pub fn mul(a: &[f32], b: &[f32]) -> Vec<f32> {
    map_broadcast(a, b, Mul)
}
