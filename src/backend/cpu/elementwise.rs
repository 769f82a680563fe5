//! The one loop every cpu elementwise op runs through: the output is cut into chunks that rayon
//! spreads over the cores, and each chunk is a plain loop run through [`simd::dispatch`], so the
//! op is inlined into AVX2 + FMA code and vectorised. (A rayon `par_iter().map()` per element calls
//! a closure through rayon's plumbing one value at a time and vectorises nothing.)
//!
//! Ops are types with an `#[inline(always)]` method rather than closures: LLVM declines to inline
//! a closure whose body is large (softplus, silu' with their polynomials) into the loop, and the
//! loop then makes one scalar call per element.

use rayon::prelude::*;

use super::simd::{self, Kernel};

/// Below this many elements the rayon split costs more than it saves.
pub(crate) const PAR_MIN: usize = 1 << 15;

/// Elements per parallel chunk: large enough to amortise a task, small enough to balance cores.
const CHUNK: usize = 1 << 14;

/// A function of one value. Implement `apply` as `#[inline(always)]`.
pub trait Unary: Sync {
    fn apply(&self, x: f32) -> f32;
}

/// A function of two values. Implement `apply` as `#[inline(always)]`.
pub trait Binary: Sync {
    fn apply(&self, x: f32, y: f32) -> f32;
}

/// `f(x[i])` for every i.
pub fn map(x: &[f32], f: impl Unary) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let run = |o: &mut [f32], x: &[f32]| simd::dispatch(Map { out: o, x, f: &f });
    if x.len() >= PAR_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| run(o, x));
    } else {
        run(&mut out, x);
    }
    out
}

/// `f(x[i], y[i])` for every i; `x` and `y` have the same length.
pub fn map2(x: &[f32], y: &[f32], f: impl Binary) -> Vec<f32> {
    debug_assert_eq!(x.len(), y.len());
    let mut out = vec![0f32; x.len()];
    let run = |o: &mut [f32], x: &[f32], y: &[f32]| {
        simd::dispatch(Map2 {
            out: o,
            x,
            y,
            f: &f,
        })
    };
    if x.len() >= PAR_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .zip(y.par_chunks(CHUNK))
            .for_each(|((o, x), y)| run(o, x, y));
    } else {
        run(&mut out, x, y);
    }
    out
}

/// `f(a[i], b[i % b.len()])`: `b` repeats over `a` (a bias over rows, or a scalar), `a.len()` a
/// multiple of `b.len()`.
pub fn map_broadcast(a: &[f32], b: &[f32], f: impl Binary) -> Vec<f32> {
    let nb = b.len();
    debug_assert!(nb > 0 && a.len().is_multiple_of(nb));
    if nb == a.len() {
        return map2(a, b, f);
    }
    if nb == 1 {
        return map(a, WithScalar(f, b[0]));
    }
    let mut out = vec![0f32; a.len()];
    // Whole rows per chunk, so each row meets b from its start.
    let rows = (CHUNK / nb).max(1) * nb;
    let run = |o: &mut [f32], x: &[f32]| {
        simd::dispatch(MapRows {
            out: o,
            x,
            b,
            f: &f,
        })
    };
    if a.len() >= PAR_MIN {
        out.par_chunks_mut(rows)
            .zip(a.par_chunks(rows))
            .for_each(|(o, x)| run(o, x));
    } else {
        run(&mut out, a);
    }
    out
}

/// A binary op with its second argument fixed.
struct WithScalar<F>(F, f32);

impl<F: Binary> Unary for WithScalar<F> {
    #[inline(always)]
    fn apply(&self, x: f32) -> f32 {
        self.0.apply(x, self.1)
    }
}

struct Map<'a, F> {
    out: &'a mut [f32],
    x: &'a [f32],
    f: &'a F,
}

impl<F: Unary> Kernel for Map<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for (o, &v) in self.out.iter_mut().zip(self.x) {
            *o = self.f.apply(v);
        }
    }
}

struct Map2<'a, F> {
    out: &'a mut [f32],
    x: &'a [f32],
    y: &'a [f32],
    f: &'a F,
}

impl<F: Binary> Kernel for Map2<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for ((o, &v), &w) in self.out.iter_mut().zip(self.x).zip(self.y) {
            *o = self.f.apply(v, w);
        }
    }
}

struct MapRows<'a, F> {
    out: &'a mut [f32],
    x: &'a [f32],
    b: &'a [f32],
    f: &'a F,
}

impl<F: Binary> Kernel for MapRows<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let nb = self.b.len();
        for (o, x) in self.out.chunks_exact_mut(nb).zip(self.x.chunks_exact(nb)) {
            for ((o, &v), &w) in o.iter_mut().zip(x).zip(self.b) {
                *o = self.f.apply(v, w);
            }
        }
    }
}
