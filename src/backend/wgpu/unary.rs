//! Launchers for `shaders/unary.wgsl`. Elementwise, so buffers over the per-binding limit run as
//! chunks of elements (`WgpuContext::row_chunks` with one element a row).

use std::sync::Arc;

use super::{Binding, GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

/// Public so tests can launch an entry point directly (tests/kernels/binding_limit.rs).
pub const KERNEL: Kernel = super::kernel!("unary" = "unary", "sigmoid");

/// `entry` is `silu`, `softplus`, `exp_forward` or `scale` (which multiplies by `c`).
pub fn unary(
    ctx: &Arc<WgpuContext>,
    entry: &'static str,
    x: &GpuBuffer,
    n: usize,
    c: f32,
) -> Result<GpuBuffer> {
    let out = ctx.alloc(n as u64 * 4)?;
    for part in ctx.row_chunks(entry, n, &[4])? {
        let bind = |b| Binding::rows(b, part.clone(), n, 4);
        ctx.launch_bindings(
            &KERNEL,
            entry,
            &[part.len() as u32, c.to_bits()],
            &[bind(x), bind(&out)],
            ctx.grid(part.len() as u64, 256),
        )?;
    }
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
    for part in ctx.row_chunks(entry, n, &[4])? {
        let bind = |b| Binding::rows(b, part.clone(), n, 4);
        ctx.launch_bindings(
            &KERNEL,
            entry,
            &[part.len() as u32, 0],
            &[bind(x), bind(g), bind(&out)],
            ctx.grid(part.len() as u64, 256),
        )?;
    }
    Ok(out)
}
