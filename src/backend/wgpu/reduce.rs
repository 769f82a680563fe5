//! Launchers for `shaders/reduce.wgsl`.

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = crate::kernel!("reduce");
const PER_GROUP: u64 = 1024;

/// A one-element buffer holding sum(x) (or sum(x^2) when `square`): passes of 1024-to-1 partial
/// sums until one value is left.
pub fn sum(ctx: &Arc<WgpuContext>, x: &GpuBuffer, n: usize, square: bool) -> Result<GpuBuffer> {
    let mut n = n as u64;
    let groups = n.div_ceil(PER_GROUP).max(1);
    let mut current = ctx.alloc(groups * 4)?;
    ctx.launch(
        &KERNEL,
        "sum_partial",
        &[n as u32, square as u32, 0],
        &[x, &current],
        ctx.grid(groups, 1),
    )?;
    n = groups;
    while n > 1 {
        let groups = n.div_ceil(PER_GROUP);
        let next = ctx.alloc(groups * 4)?;
        ctx.launch(
            &KERNEL,
            "sum_partial",
            &[n as u32, 0, 0],
            &[&current, &next],
            ctx.grid(groups, 1),
        )?;
        current = next;
        n = groups;
    }
    Ok(current)
}

/// Rows summed per pass of `sum_columns` (see the shader's note on loop lengths).
const ROWS_PER_PASS: u64 = 256;

/// x: [rows, cols] -> [cols], in passes that each sum blocks of ROWS_PER_PASS rows.
pub fn sum_columns(
    ctx: &Arc<WgpuContext>,
    x: &GpuBuffer,
    rows: usize,
    cols: usize,
) -> Result<GpuBuffer> {
    let cols64 = cols as u64;
    let mut rows = rows as u64;
    let mut current: Option<GpuBuffer> = None;
    loop {
        let out_rows = rows.div_ceil(ROWS_PER_PASS).max(1);
        let out = ctx.alloc(out_rows * cols64 * 4)?;
        let input = current.as_ref().unwrap_or(x);
        let params = [rows as u32, cols as u32, ROWS_PER_PASS as u32];
        ctx.launch(
            &KERNEL,
            "sum_columns",
            &params,
            &[input, &out],
            ctx.grid(out_rows * cols64, 256),
        )?;
        current = Some(out);
        rows = out_rows;
        if rows == 1 {
            return Ok(current.expect("set above"));
        }
    }
}

/// x: [nx] repeated to [n].
pub fn expand(ctx: &Arc<WgpuContext>, x: &GpuBuffer, nx: usize, n: usize) -> Result<GpuBuffer> {
    let out = ctx.alloc(n as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        "expand",
        &[n as u32, nx as u32, 0],
        &[x, &out],
        ctx.grid(n as u64, 256),
    )?;
    Ok(out)
}
