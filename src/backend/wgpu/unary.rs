//! Launchers for `shaders/unary.wgsl`.

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = crate::kernel!("unary");

/// `entry` is `silu`, `softplus`, `exp_forward` or `scale` (which multiplies by `c`).
pub fn unary(
    ctx: &Arc<WgpuContext>,
    entry: &'static str,
    x: &GpuBuffer,
    n: usize,
    c: f32,
) -> Result<GpuBuffer> {
    let out = ctx.alloc(n as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        entry,
        &[n as u32, c.to_bits()],
        &[x, &out],
        ctx.grid(n as u64, 256),
    )?;
    Ok(out)
}

/// `entry` is `silu_backward` or `softplus_backward`: the input's gradient from `x` and `g`.
pub fn unary_backward(
    ctx: &Arc<WgpuContext>,
    entry: &'static str,
    x: &GpuBuffer,
    g: &GpuBuffer,
    n: usize,
) -> Result<GpuBuffer> {
    let out = ctx.alloc(n as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        entry,
        &[n as u32, 0],
        &[x, g, &out],
        ctx.grid(n as u64, 256),
    )?;
    Ok(out)
}
