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
    ctx.launch(&KERNEL, "sum_partial", &[n as u32, square as u32], &[x, &current], ctx.grid(groups, 1))?;
    n = groups;
    while n > 1 {
        let groups = n.div_ceil(PER_GROUP);
        let next = ctx.alloc(groups * 4)?;
        ctx.launch(&KERNEL, "sum_partial", &[n as u32, 0], &[&current, &next], ctx.grid(groups, 1))?;
        current = next;
        n = groups;
    }
    Ok(current)
}

/// x: [rows, cols] -> [cols].
pub fn sum_columns(ctx: &Arc<WgpuContext>, x: &GpuBuffer, rows: usize, cols: usize) -> Result<GpuBuffer> {
    let out = ctx.alloc(cols as u64 * 4)?;
    ctx.launch(&KERNEL, "sum_columns", &[rows as u32, cols as u32], &[x, &out], ctx.grid(cols as u64, 256))?;
    Ok(out)
}

/// x: [nx] repeated to [n].
pub fn expand(ctx: &Arc<WgpuContext>, x: &GpuBuffer, nx: usize, n: usize) -> Result<GpuBuffer> {
    let out = ctx.alloc(n as u64 * 4)?;
    ctx.launch(&KERNEL, "expand", &[n as u32, nx as u32], &[x, &out], ctx.grid(n as u64, 256))?;
    Ok(out)
}
