//! The one loop every cpu elementwise op runs through: the output is cut into chunks that rayon
//! spreads over the cores, and each chunk is a plain loop run through [`simd::dispatch`], so the
//! op is inlined into AVX2 + FMA code and vectorised. (A rayon `par_iter().map()` per element calls
//! a closure through rayon's plumbing one value at a time and vectorises nothing.)
//!
//! Ops are types with an `#[inline(always)]` method rather than closures: LLVM declines to inline
//! a closure whose body is large (softplus, silu' with their polynomials) into the loop, and the
//! loop then makes one scalar call per element.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::simd::{self, Kernel};

/// Below this many elements the rayon split costs more than it saves.
pub(crate) const PAR_MIN: usize = 1 << 15;

/// Elements per parallel chunk: large enough to amortise a task, small enough to balance cores.
pub(crate) const CHUNK: usize = 1 << 14;

/// A function of one value. Implement `apply` as `#[inline(always)]`.
pub trait Unary: Sync {
    fn apply(&self, x: f32) -> f32;
}

/// A function of two values. Implement `apply` as `#[inline(always)]`.
pub trait Binary: Sync {
    fn apply(&self, x: f32, y: f32) -> f32;
}

/// A vector of `n` values that `fill` writes, every one of them (the maps here and the row
/// builders in `shape` write each output element exactly once). Not zeroing it first saves a pass
/// over memory: with freed memory kept in the heap, a zeroed allocation is a `memset`.
pub(crate) fn filled<T>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    fill(&mut out.spare_capacity_mut()[..n]);
    // SAFETY: the first n elements were all written by `fill` (each map's chunks of the output
    // and of its inputs have the same lengths, and every chunk's loop writes its whole output;
    // `shape::rows` writes every row in full).
    unsafe { out.set_len(n) };
    out
}

/// Calls `fill(i, piece)` for the i-th consecutive piece of `size` elements of `out` (the last may
/// be shorter), spread over the cores when `out` has `PAR_MIN` elements or more: the one split
/// every parallel cpu loop of outputs goes through.
pub(crate) fn for_each_piece<T: Send>(
    out: &mut [T],
    size: usize,
    fill: impl Fn(usize, &mut [T]) + Sync,
) {
    let mut none = vec![(); out.len().div_ceil(size)];
    for_each_piece_with(out, size, &mut none, |i, piece, _| fill(i, piece));
}

/// [`for_each_piece`] with a second output per piece, `side[i]` (one per piece: partial sums that
/// the caller then adds in piece order, which does not depend on the thread timing).
pub(crate) fn for_each_piece_with<T: Send, S: Send>(
    out: &mut [T],
    size: usize,
    side: &mut [S],
    fill: impl Fn(usize, &mut [T], &mut S) + Sync,
) {
    assert_eq!(
        side.len(),
        out.len().div_ceil(size),
        "one side output per piece"
    );
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(size)
            .zip(side.par_iter_mut())
            .enumerate()
            .for_each(|(i, (piece, s))| fill(i, piece, s));
    } else {
        for (i, (piece, s)) in out.chunks_mut(size).zip(side.iter_mut()).enumerate() {
            fill(i, piece, s);
        }
    }
}

/// Rows per parallel piece of a row op (conv1d's positions, a softmax's rows): one row is too
/// little work for a task.
pub(crate) const ROWS: usize = 16;

/// A loop over a block of whole rows: a type with an `#[inline(always)]` method rather than a
/// closure, so that it is inlined into the AVX2 + FMA compilation (LLVM may keep a closure out of
/// line, and its `mul_add`s then become libm calls).
pub(crate) trait Rows: Sync {
    /// Fills `block` (whole rows), whose first row is row `first` of the output.
    fn fill(&self, first: usize, block: &mut [f32]);
}

/// Runs `rows.fill` over `out` in blocks of `ROWS` rows of `width` values, in parallel when the
/// work is large; each block is compiled for AVX2 + FMA where the cpu has it.
pub(crate) fn rows_of(out: &mut [f32], width: usize, rows: impl Rows) {
    for_each_piece(out, ROWS * width, |blk, o| {
        simd::dispatch(RowBlock {
            first: blk * ROWS,
            out: o,
            rows: &rows,
        })
    });
}

struct RowBlock<'a, R> {
    first: usize,
    out: &'a mut [f32],
    rows: &'a R,
}

impl<R: Rows> Kernel for RowBlock<'_, R> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.rows.fill(self.first, self.out)
    }
}

/// `f(x[i])` for every i.
pub fn map(x: &[f32], f: impl Unary) -> Vec<f32> {
    filled(x.len(), |out| {
        for_each_piece(out, CHUNK, |i, o| {
            let x = &x[i * CHUNK..][..o.len()];
            simd::dispatch(Map { out: o, x, f: &f })
        })
    })
}

/// `f(x[i], y[i])` for every i; `x` and `y` have the same length.
pub fn map2(x: &[f32], y: &[f32], f: impl Binary) -> Vec<f32> {
    assert_eq!(x.len(), y.len(), "map2 takes inputs of one length");
    filled(x.len(), |out| {
        for_each_piece(out, CHUNK, |i, o| {
            let (x, y) = (&x[i * CHUNK..][..o.len()], &y[i * CHUNK..][..o.len()]);
            simd::dispatch(Map2 {
                out: o,
                x,
                y,
                f: &f,
            })
        })
    })
}

/// `f(a[i], b[i % b.len()])`: `b` repeats over `a` (a bias over rows, or a scalar), `a.len()` a
/// multiple of `b.len()`.
pub fn map_broadcast(a: &[f32], b: &[f32], f: impl Binary) -> Vec<f32> {
    let nb = b.len();
    if nb == a.len() {
        return map2(a, b, f);
    }
    if nb == 1 {
        return map(a, WithScalar(f, b[0]));
    }
    assert!(a.len().is_multiple_of(nb), "map_broadcast takes whole rows");
    // Whole rows per piece, so each row meets b from its start.
    let rows = (CHUNK / nb).max(1) * nb;
    filled(a.len(), |out| {
        for_each_piece(out, rows, |i, o| {
            let x = &a[i * rows..][..o.len()];
            simd::dispatch(MapRows {
                out: o,
                x,
                b,
                f: &f,
            })
        })
    })
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
    out: &'a mut [MaybeUninit<f32>],
    x: &'a [f32],
    f: &'a F,
}

impl<F: Unary> Kernel for Map<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for (o, &v) in self.out.iter_mut().zip(self.x) {
            o.write(self.f.apply(v));
        }
    }
}

struct Map2<'a, F> {
    out: &'a mut [MaybeUninit<f32>],
    x: &'a [f32],
    y: &'a [f32],
    f: &'a F,
}

impl<F: Binary> Kernel for Map2<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for ((o, &v), &w) in self.out.iter_mut().zip(self.x).zip(self.y) {
            o.write(self.f.apply(v, w));
        }
    }
}

struct MapRows<'a, F> {
    out: &'a mut [MaybeUninit<f32>],
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
                o.write(self.f.apply(v, w));
            }
        }
    }
}
