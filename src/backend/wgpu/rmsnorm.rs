//! Launchers for `shaders/rmsnorm.wgsl`.

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("rmsnorm");
/// Rows per partial sum of dweight; `CHUNK` in the shader.
const CHUNK: usize = 64;

/// x: [rows, d], weight: [d] -> [rows, d]; one workgroup per row.
pub fn rms_norm(
    ctx: &Arc<WgpuContext>,
    x: &GpuBuffer,
    weight: &GpuBuffer,
    rows: usize,
    d: usize,
    eps: f32,
) -> Result<GpuBuffer> {
    let out = ctx.alloc((rows * d) as u64 * 4)?;
    let params = [rows as u32, d as u32, eps.to_bits(), 0];
    ctx.launch(
        &KERNEL,
        "rms_norm",
        &params,
        &[x, weight, &out],
        ctx.grid(rows as u64, 1),
    )?;
    Ok(out)
}

/// (dx [rows, d], dweight [d]) from the output's gradient g [rows, d]. The kernel writes each row's
/// contribution to dweight; chunks of 64 rows are summed, then `sum_columns` adds the chunks, all
/// in a fixed order (deterministic).
pub fn rms_norm_backward(
    ctx: &Arc<WgpuContext>,
    x: &GpuBuffer,
    weight: &GpuBuffer,
    g: &GpuBuffer,
    rows: usize,
    d: usize,
    eps: f32,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let bytes = (rows * d) as u64 * 4;
    let dx = ctx.alloc(bytes)?;
    let dweight_rows = ctx.alloc(bytes)?;
    let chunks = rows.div_ceil(CHUNK);
    let params = [rows as u32, d as u32, eps.to_bits(), chunks as u32];
    ctx.launch(
        &KERNEL,
        "rms_norm_backward",
        &params,
        &[x, weight, g, &dx, &dweight_rows],
        ctx.grid(rows as u64, 1),
    )?;
    if chunks <= 1 {
        return Ok((dx, super::reduce::sum_columns(ctx, &dweight_rows, rows, d)?));
    }
    let dweight_parts = ctx.alloc((chunks * d) as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        "rms_norm_dweight_chunks",
        &params,
        &[&dweight_rows, &dweight_parts],
        ctx.grid((chunks * d) as u64, 256),
    )?;
    let dweight = super::reduce::sum_columns(ctx, &dweight_parts, chunks, d)?;
    Ok((dx, dweight))
}
