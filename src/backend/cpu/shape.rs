//! narrow, its backward, and concat. A tensor of shape [a.., n, b..] is viewed as [outer, cols]
//! with outer = prod(a..) and cols = n * prod(b..), so a slice along the dimension of size n is a
//! block of whole columns; every function here is a loop of row-wise block copies. Generic over
//! the element type so ids (u32) slice like activations. Outputs are built by [`rows`]: each
//! element written once (no zeroing pass before the copies), in blocks of rows spread over the
//! cores (one thread copying alone left the other core idle for ~5% of a training step).

use std::mem::MaybeUninit;

use super::elementwise::{CHUNK, filled, for_each_piece};

/// An [outer, width] array whose row r is written by `row(r, out_row)`; `row` must write all of
/// `out_row`. Blocks of rows run in parallel when the array is large.
pub(crate) fn rows<T: Send>(
    outer: usize,
    width: usize,
    row: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    if width == 0 {
        return Vec::new();
    }
    let block = (CHUNK / width).max(1);
    filled(outer * width, |out| {
        for_each_piece(out, block * width, |b, o| {
            for (i, r) in o.chunks_exact_mut(width).enumerate() {
                row(b * block + i, r);
            }
        })
    })
}

/// x: [outer, cols] -> [outer, width], columns start..start + width.
pub fn narrow<T: Copy + Send + Sync>(
    x: &[T],
    outer: usize,
    cols: usize,
    start: usize,
    width: usize,
) -> Vec<T> {
    rows(outer, width, |r, o| {
        o.write_copy_of_slice(&x[r * cols + start..][..width]);
    })
}

/// g: [outer, width] -> [outer, cols]: g in columns start..start + width, zeros elsewhere.
pub fn narrow_backward(
    g: &[f32],
    outer: usize,
    cols: usize,
    start: usize,
    width: usize,
) -> Vec<f32> {
    rows(outer, cols, |r, o| {
        let (before, rest) = o.split_at_mut(start);
        let (mid, after) = rest.split_at_mut(width);
        before.fill(MaybeUninit::new(0.0));
        mid.write_copy_of_slice(&g[r * width..][..width]);
        after.fill(MaybeUninit::new(0.0));
    })
}

/// parts: (x_i [outer, cols_i], cols_i) -> [outer, sum_i cols_i], side by side in each row.
pub fn concat<T: Copy + Send + Sync>(parts: &[(&[T], usize)], outer: usize) -> Vec<T> {
    let total: usize = parts.iter().map(|&(_, c)| c).sum();
    rows(outer, total, |r, mut o| {
        for &(x, cols) in parts {
            let (part, rest) = o.split_at_mut(cols);
            part.write_copy_of_slice(&x[r * cols..][..cols]);
            o = rest;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large enough for the parallel row blocks, with rows that straddle block boundaries.
    const OUTER: usize = 1999;
    const COLS: usize = 37;

    fn array() -> Vec<f32> {
        (0..OUTER * COLS).map(|i| i as f32).collect()
    }

    #[test]
    fn narrow_and_concat_in_parallel_blocks_match_a_plain_loop() {
        let x = array();
        let (start, width) = (5, 20);
        let want: Vec<f32> = (0..OUTER)
            .flat_map(|r| x[r * COLS + start..][..width].to_vec())
            .collect();
        assert_eq!(narrow(&x, OUTER, COLS, start, width), want);
        let left = narrow(&x, OUTER, COLS, 0, start);
        let right = narrow(&x, OUTER, COLS, start, COLS - start);
        assert_eq!(concat(&[(&left, start), (&right, COLS - start)], OUTER), x);
        assert!(narrow(&x, OUTER, COLS, 3, 0).is_empty());
    }

    #[test]
    fn narrow_backward_in_parallel_blocks_pads_every_row_with_zeros() {
        let (start, width) = (5, 20);
        let g: Vec<f32> = (0..OUTER * width).map(|i| i as f32 + 1.0).collect();
        let out = narrow_backward(&g, OUTER, COLS, start, width);
        for r in [0, 1, OUTER / 2, OUTER - 1] {
            let row = &out[r * COLS..][..COLS];
            assert!(
                row[..start]
                    .iter()
                    .chain(&row[start + width..])
                    .all(|v| *v == 0.0)
            );
            assert_eq!(&row[start..start + width], &g[r * width..][..width]);
        }
    }
}
