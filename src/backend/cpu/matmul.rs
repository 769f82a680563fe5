//! Matrix products through the `gemm` crate. Shapes: `a` is [M, K] (stored [K, M] when
//! `trans_a`), `b` is [K, N] (stored [N, K] when `trans_b`), the result is [M, N], all row-major.
//! A transpose is free: it only swaps the row and column strides gemm reads with.
//!
//! The backward pass needs no function of its own: `ops::matmul` expresses dA and dB as matmuls
//! with other transpose flags.

use super::matvec::{DOT_ROWS, rows_times_weight};
use crate::error::{Result, shape_err};

/// C = op(A) op(B), with op a transpose where the flag says so.
pub fn matmul(
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
) -> Result<Vec<f32>> {
    // These checks are what makes the unsafe call in `gemm_f32` sound, so they stay even though
    // `ops::matmul` has already checked the tensors' shapes.
    check_lengths("matmul", a.len(), b.len(), m, k, n)?;
    if m == 0 || n == 0 || k == 0 {
        // An empty sum: the zeros are the answer (and gemm is not asked about degenerate shapes).
        return Ok(vec![0f32; m * n]);
    }
    if trans_b && !trans_a && m <= DOT_ROWS {
        // A few rows times a Linear weight (a decode step): dot products, no packing of b.
        return Ok(rows_times_weight(a, b, m, k, n));
    }
    // Not zeroed first: gemm overwrites all of C (a zeroed allocation would be a memset pass).
    let mut c = Vec::with_capacity(m * n);
    gemm_f32(
        &mut c.spare_capacity_mut()[..m * n],
        a,
        b,
        m,
        k,
        n,
        trans_a,
        trans_b,
    );
    // SAFETY: gemm_f32 wrote all m * n elements (see there).
    unsafe { c.set_len(m * n) };
    Ok(c)
}

/// Whether operands of `a_len` and `b_len` values are [M, K] and [K, N] (in either layout) and
/// C's M N elements are countable; an error naming `op` otherwise.
pub(super) fn check_lengths(
    op: &'static str,
    a_len: usize,
    b_len: usize,
    m: usize,
    k: usize,
    n: usize,
) -> Result<()> {
    let elems = |r: usize, c: usize| r.checked_mul(c);
    if elems(m, k) != Some(a_len) || elems(k, n) != Some(b_len) || elems(m, n).is_none() {
        return shape_err(
            op,
            format!("cpu kernel got {a_len} and {b_len} values for (M, K, N) = ({m}, {k}, {n})"),
        );
    }
    Ok(())
}

/// The one unsafe call: c [M, N] = op(a) op(b), writing every element of c.
#[allow(clippy::too_many_arguments)]
fn gemm_f32(
    c: &mut [std::mem::MaybeUninit<f32>],
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
) {
    debug_assert!(c.len() == m * n && a.len() == m * k && b.len() == k * n);
    // Element (i, l) of op(A) sits at a[i * lhs_rs + l * lhs_cs]; likewise for op(B) and C.
    let (lhs_rs, lhs_cs) = if trans_a {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (rhs_rs, rhs_cs) = if trans_b {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    let (dst_rs, dst_cs) = (n as isize, 1);
    // SAFETY: gemm reads op(A) at offsets i*lhs_rs + l*lhs_cs for i < m, l < k, whose largest value
    // is (m-1)*k + (k-1) = m*k - 1 in both layouts (< a.len(), checked by the caller `matmul`);
    // likewise op(B) reaches at most k*n - 1 < b.len() and C at most m*n - 1 < c.len(). `c` is a
    // unique borrow, so it aliases neither input, and no dimension is zero. With read_dst = false
    // gemm overwrites C (alpha is then unused) with beta * op(A) op(B) = op(A) op(B), never reading
    // it, so C may be uninitialised.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().cast::<f32>(),
            dst_cs,
            dst_rs,
            false,
            a.as_ptr(),
            lhs_cs,
            lhs_rs,
            b.as_ptr(),
            rhs_cs,
            rhs_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}
