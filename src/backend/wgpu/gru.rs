//! Launchers for `shaders/gru.wgsl`: the GRU cell's gates, fused, forward and backward.

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("gru" = "gru", "sigmoid");

/// gi, gh [B, 3H], h [B, H] -> h' [B, H].
pub fn gru_gates(
    ctx: &Arc<WgpuContext>,
    gi: &GpuBuffer,
    gh: &GpuBuffer,
    h: &GpuBuffer,
    batch: usize,
    hidden: usize,
) -> Result<GpuBuffer> {
    let n = batch * hidden;
    let out = ctx.alloc(n as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        "gru_gates",
        &[batch as u32, hidden as u32],
        &[gi, gh, h, &out],
        ctx.grid(n as u64, 256),
    )?;
    Ok(out)
}

/// From g = dL/dh' [B, H]: (dgi [B, 3H], dgh [B, 3H], dh [B, H]), in one dispatch.
pub fn gru_gates_backward(
    ctx: &Arc<WgpuContext>,
    gi: &GpuBuffer,
    gh: &GpuBuffer,
    h: &GpuBuffer,
    g: &GpuBuffer,
    batch: usize,
    hidden: usize,
) -> Result<(GpuBuffer, GpuBuffer, GpuBuffer)> {
    let n = batch * hidden;
    let (dgi, dgh, dh) = (
        ctx.alloc(3 * n as u64 * 4)?,
        ctx.alloc(3 * n as u64 * 4)?,
        ctx.alloc(n as u64 * 4)?,
    );
    let buffers = [gi, gh, h, g, &dgi, &dgh, &dh];
    ctx.launch(
        &KERNEL,
        "gru_gates_backward",
        &[batch as u32, hidden as u32],
        &buffers,
        ctx.grid(n as u64, 256),
    )?;
    Ok((dgi, dgh, dh))
}
