//! Elementwise binary ops. `a: [n]`, `b: [nb]` with `n % nb == 0`; `b` repeats over `a`'s leading
//! dimensions (a bias over rows, or a scalar when `nb == 1`).

use super::elementwise::{Binary, CHUNK, for_each_piece, map_broadcast};
use super::simd::{self, Kernel};

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

/// acc[i] += x[i] (same lengths), in parallel pieces when large.
pub fn add_assign(acc: &mut [f32], x: &[f32]) {
    assert_eq!(acc.len(), x.len(), "add_assign takes slices of one length");
    for_each_piece(acc, CHUNK, |i, acc| {
        let x = &x[i * CHUNK..][..acc.len()];
        simd::dispatch(AddAssign { acc, x })
    });
}

struct AddAssign<'a> {
    acc: &'a mut [f32],
    x: &'a [f32],
}

impl Kernel for AddAssign<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for (a, &v) in self.acc.iter_mut().zip(self.x) {
            *a += v;
        }
    }
}
