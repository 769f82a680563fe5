//! narrow, its backward, and concat. A tensor of shape [a.., n, b..] is viewed as [outer, cols]
//! with outer = prod(a..) and cols = n * prod(b..), so a slice along the dimension of size n is a
//! block of whole columns; every function here is a loop of row-wise block copies. Generic over
//! the element type so ids (u32) slice like activations. Outputs are built row by row with
//! `extend_from_slice`, so each element is written once (no zeroing pass before the copies).

/// x: [outer, cols] -> [outer, width], columns start..start + width.
pub fn narrow<T: Copy>(x: &[T], outer: usize, cols: usize, start: usize, width: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(outer * width);
    if width > 0 {
        for row in x.chunks_exact(cols).take(outer) {
            out.extend_from_slice(&row[start..start + width]);
        }
    }
    out
}

/// g: [outer, width] -> [outer, cols]: g in columns start..start + width, zeros elsewhere.
pub fn narrow_backward(
    g: &[f32],
    outer: usize,
    cols: usize,
    start: usize,
    width: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(outer * cols);
    for r in 0..outer {
        out.resize(out.len() + start, 0.0);
        out.extend_from_slice(&g[r * width..][..width]);
        out.resize(out.len() + cols - start - width, 0.0);
    }
    out
}

/// parts: (x_i [outer, cols_i], cols_i) -> [outer, sum_i cols_i], side by side in each row.
pub fn concat<T: Copy>(parts: &[(&[T], usize)], outer: usize) -> Vec<T> {
    let total: usize = parts.iter().map(|&(_, c)| c).sum();
    let mut out = Vec::with_capacity(outer * total);
    for r in 0..outer {
        for &(x, cols) in parts {
            out.extend_from_slice(&x[r * cols..][..cols]);
        }
    }
    out
}
