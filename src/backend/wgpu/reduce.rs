//! Launchers for `shaders/reduce.wgsl`.

use std::sync::Arc;

use super::{Binding, GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("reduce");
const PER_GROUP: u64 = 1024;

/// A one-element buffer holding sum(x) (or sum(x^2) when `square`): passes of 1024-to-1 partial
/// sums until one value is left. An x over the per-binding limit (a gradient norm over a big
/// vocabulary's embedding) is read in chunks of whole 1024-element blocks, which writes the same
/// partials as one launch would.
pub fn sum(ctx: &Arc<WgpuContext>, x: &GpuBuffer, n: usize, square: bool) -> Result<GpuBuffer> {
    let elements = n;
    let mut n = n as u64;
    let groups = n.div_ceil(PER_GROUP).max(1);
    let mut current = ctx.alloc(groups * 4)?;
    let blocks = groups as usize;
    let block_bytes = PER_GROUP.min(n) * 4;
    for part in ctx.row_chunks("sum_partial", blocks, &[block_bytes, 4])? {
        let len = (part.end * PER_GROUP as usize).min(elements) - part.start * PER_GROUP as usize;
        ctx.launch_bindings(
            &KERNEL,
            "sum_partial",
            &[len as u32, square as u32, 0],
            &[
                Binding::rows(x, part.clone(), blocks, block_bytes),
                Binding::rows(&current, part.clone(), blocks, 4),
            ],
            ctx.grid(part.len() as u64, 1),
        )?;
    }
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
        // Over the per-binding limit, chunks of output rows, each reading its blocks of input rows.
        let blocks = out_rows as usize;
        // A lone block holds only the rows there are.
        let block_bytes = ROWS_PER_PASS.min(rows) * cols64 * 4;
        for part in ctx.row_chunks("sum_columns", blocks, &[block_bytes, cols64 * 4])? {
            let in_rows =
                (part.end as u64 * ROWS_PER_PASS).min(rows) - part.start as u64 * ROWS_PER_PASS;
            let params = [in_rows as u32, cols as u32, ROWS_PER_PASS as u32];
            ctx.launch_bindings(
                &KERNEL,
                "sum_columns",
                &params,
                &[
                    Binding::rows(input, part.clone(), blocks, block_bytes),
                    Binding::rows(&out, part.clone(), blocks, cols64 * 4),
                ],
                ctx.grid(part.len() as u64 * cols64, 256),
            )?;
        }
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
    // Over the per-binding limit, chunks of whole repeats of x.
    let (row, rows) = (nx.max(1), n / nx.max(1));
    for part in ctx.row_chunks("expand", rows, &[row as u64 * 4])? {
        let len = part.len() * row;
        ctx.launch_bindings(
            &KERNEL,
            "expand",
            &[len as u32, nx as u32, 0],
            &[
                Binding::whole(x),
                Binding::rows(&out, part, rows, row as u64 * 4),
            ],
            ctx.grid(len as u64, 256),
        )?;
    }
    Ok(out)
}
