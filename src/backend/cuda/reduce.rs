//! Launchers for `shaders/cuda/reduce.cu`: the sum of a vector (repeated partial sums), column
//! sums (also how the backward passes add their per-block partials, in a fixed order) and expand.

use std::sync::Arc;

use cudarc::driver::CudaSlice;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, blocks, grid, launch};
use crate::error::Result;

/// Rows one `sum_columns` pass adds per output row: short serial loops, many threads.
const COLUMN_CHUNK: usize = 64;

/// The sum of x [n] (of its squares when `square`), one element.
pub fn sum(dev: &Arc<CudaDevice>, x: &CudaBuffer, n: usize, square: bool) -> Result<CudaBuffer> {
    sum_slice(dev, x.f32("sum", "x")?, n, square)
}

/// `sum` of a raw slice (the cross-entropy's per-row losses).
pub fn sum_slice(
    dev: &Arc<CudaDevice>,
    x: &CudaSlice<f32>,
    n: usize,
    square: bool,
) -> Result<CudaBuffer> {
    if n == 0 {
        return dev.zeros_f32(1);
    }
    let mut parts = (n.div_ceil(1024), dev.alloc_f32(n.div_ceil(1024))?);
    partial_sums(dev, x, &mut parts.1, n, square)?;
    while parts.0 > 1 {
        let count = parts.0.div_ceil(1024);
        let mut next = dev.alloc_f32(count)?;
        partial_sums(
            dev,
            parts.1.f32("sum", "partials")?,
            &mut next,
            parts.0,
            false,
        )?;
        parts = (count, next);
    }
    Ok(parts.1)
}

/// One pass: out[w] = the sum of x[w * 1024 ..][..1024].
fn partial_sums(
    dev: &Arc<CudaDevice>,
    x: &CudaSlice<f32>,
    out: &mut CudaBuffer,
    n: usize,
    square: bool,
) -> Result<()> {
    let o = out.f32_mut("sum", "out")?;
    let (n64, sq) = (n as u64, square as u32);
    let count = n.div_ceil(1024);
    // One block per 1024 inputs: grid.x up to 65535, grid.y for the rest.
    let cfg = blocks(count, 256).map(|mut c| {
        let x_blocks = count.min(65535);
        c.grid_dim = (x_blocks as u32, count.div_ceil(x_blocks) as u32, 1);
        c
    });
    launch!(dev, "reduce", "sum_partial", cfg; x, o, &n64, &sq);
    Ok(())
}

/// x [rows, cols] summed over rows -> [cols], in row order.
pub fn sum_columns(
    dev: &Arc<CudaDevice>,
    x: &CudaBuffer,
    rows: usize,
    cols: usize,
) -> Result<CudaBuffer> {
    sum_columns_slice(dev, x.f32("sum_columns", "x")?, rows, cols)
}

/// `sum_columns` of a raw slice: passes of COLUMN_CHUNK rows until one row is left.
pub fn sum_columns_slice(
    dev: &Arc<CudaDevice>,
    x: &CudaSlice<f32>,
    rows: usize,
    cols: usize,
) -> Result<CudaBuffer> {
    if rows == 0 {
        return dev.zeros_f32(cols);
    }
    let (mut current, mut rows_left) = column_pass(dev, x, rows, cols)?;
    while rows_left > 1 {
        let next = column_pass(
            dev,
            current.f32("sum_columns", "partials")?,
            rows_left,
            cols,
        )?;
        (current, rows_left) = next;
    }
    Ok(current)
}

/// One pass: each output row the sum of COLUMN_CHUNK input rows; returns it and its row count.
fn column_pass(
    dev: &Arc<CudaDevice>,
    x: &CudaSlice<f32>,
    rows: usize,
    cols: usize,
) -> Result<(CudaBuffer, usize)> {
    let out_rows = rows.div_ceil(COLUMN_CHUNK);
    let mut out = dev.alloc_f32(out_rows * cols)?;
    let o = out.f32_mut("sum_columns", "out")?;
    let (r, c, k) = (rows as u64, cols as u64, COLUMN_CHUNK as u64);
    launch!(dev, "reduce", "sum_columns", grid(out_rows * cols); x, o, &r, &c, &k);
    Ok((out, out_rows))
}

/// x [nx] repeated to n elements.
pub fn expand(dev: &Arc<CudaDevice>, x: &CudaBuffer, nx: usize, n: usize) -> Result<CudaBuffer> {
    let x = x.f32("expand", "x")?;
    let mut out = dev.alloc_f32(n)?;
    let o = out.f32_mut("expand", "out")?;
    let (n64, nx64) = (n as u64, nx.max(1) as u64);
    launch!(dev, "reduce", "expand", grid(n); x, o, &n64, &nx64);
    Ok(out)
}
