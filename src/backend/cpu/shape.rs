//! narrow, its backward, and concat. A tensor of shape [a.., n, b..] is viewed as [outer, cols]
//! with outer = prod(a..) and cols = n * prod(b..), so a slice along the dimension of size n is a
//! block of whole columns; every function here is a loop of row-wise block copies. Generic over
//! the element type so ids (u32) slice like activations.

/// Copies columns src_col.. of each row of `src` ([rows, src_cols]) into columns dst_col.. of
/// `dst` ([rows, dst_cols]), `width` columns per row.
fn copy_block<T: Copy>(
    src: &[T],
    src_cols: usize,
    src_col: usize,
    dst: &mut [T],
    dst_cols: usize,
    dst_col: usize,
    width: usize,
) {
    if width == 0 {
        return;
    }
    for (s, d) in src
        .chunks_exact(src_cols)
        .zip(dst.chunks_exact_mut(dst_cols))
    {
        d[dst_col..dst_col + width].copy_from_slice(&s[src_col..src_col + width]);
    }
}

/// x: [outer, cols] -> [outer, width], columns start..start + width.
pub fn narrow<T: Copy + Default>(
    x: &[T],
    outer: usize,
    cols: usize,
    start: usize,
    width: usize,
) -> Vec<T> {
    let mut out = vec![T::default(); outer * width];
    copy_block(x, cols, start, &mut out, width, 0, width);
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
    let mut out = vec![0.0; outer * cols];
    copy_block(g, width, 0, &mut out, cols, start, width);
    out
}

/// parts: (x_i [outer, cols_i], cols_i) -> [outer, sum_i cols_i], side by side in each row.
pub fn concat<T: Copy + Default>(parts: &[(&[T], usize)], outer: usize) -> Vec<T> {
    let total: usize = parts.iter().map(|&(_, c)| c).sum();
    let mut out = vec![T::default(); outer * total];
    let mut at = 0;
    for &(x, cols) in parts {
        copy_block(x, cols, 0, &mut out, total, at, cols);
        at += cols;
    }
    out
}
