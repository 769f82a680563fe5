//! Launchers for `shaders/binary.wgsl` (add, mul with `b` repeated over `a`'s leading dimensions).

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = crate::kernel!("binary");

/// `entry` is `add` or `mul`; `n` elements of `a`, `nb` of `b`.
pub fn binary(
    ctx: &Arc<WgpuContext>,
    entry: &'static str,
    a: &GpuBuffer,
    b: &GpuBuffer,
    n: usize,
    nb: usize,
) -> Result<GpuBuffer> {
    let out = ctx.alloc(n as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        entry,
        &[n as u32, nb as u32],
        &[a, b, &out],
        ctx.grid(n as u64, 256),
    )?;
    Ok(out)
}
