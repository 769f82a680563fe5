//! Launchers for `shaders/cross_entropy.wgsl` (row-wise log-softmax and the fused cross-entropy).

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = crate::kernel!("cross_entropy");

/// The uniform block: {rows, v, ignore_index, has_ignore, inv_count}.
fn params(rows: usize, v: usize, ignore_index: Option<u32>, inv_count: f32) -> [u32; 5] {
    [
        rows as u32,
        v as u32,
        ignore_index.unwrap_or(0),
        ignore_index.is_some() as u32,
        inv_count.to_bits(),
    ]
}

/// x: [rows, v] -> log_softmax over v; one workgroup per row.
pub fn log_softmax(
    ctx: &Arc<WgpuContext>,
    x: &GpuBuffer,
    rows: usize,
    v: usize,
) -> Result<GpuBuffer> {
    let y = ctx.alloc((rows * v) as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        "log_softmax",
        &params(rows, v, None, 0.0),
        &[x, &y],
        ctx.grid(rows as u64, 1),
    )?;
    Ok(y)
}

/// dx: [rows, v] from x and the output's gradient g: [rows, v].
pub fn log_softmax_backward(
    ctx: &Arc<WgpuContext>,
    x: &GpuBuffer,
    g: &GpuBuffer,
    rows: usize,
    v: usize,
) -> Result<GpuBuffer> {
    let dx = ctx.alloc((rows * v) as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        "log_softmax_backward",
        &params(rows, v, None, 0.0),
        &[x, g, &dx],
        ctx.grid(rows as u64, 1),
    )?;
    Ok(dx)
}

/// The mean loss, [1]: per-row losses already divided by `count` (the rows not ignored; the
/// caller counted them on the host), then one ordered tree sum. `count == 0` gives 0.
pub fn cross_entropy(
    ctx: &Arc<WgpuContext>,
    logits: &GpuBuffer,
    targets: &GpuBuffer,
    ignore_index: Option<u32>,
    rows: usize,
    v: usize,
    count: usize,
) -> Result<GpuBuffer> {
    let inv_count = if count == 0 { 0.0 } else { 1.0 / count as f32 };
    let row_loss = ctx.alloc(rows as u64 * 4)?;
    let p = params(rows, v, ignore_index, inv_count);
    ctx.launch(
        &KERNEL,
        "cross_entropy_rows",
        &p,
        &[logits, targets, &row_loss],
        ctx.grid(rows as u64, 1),
    )?;
    super::reduce::sum(ctx, &row_loss, rows, false)
}

/// dlogits: [rows, v] = (softmax - onehot(target)) * g / count in one pass; `g` is the loss's
/// gradient, a one-element buffer read by the kernel (no trip to the host).
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward(
    ctx: &Arc<WgpuContext>,
    logits: &GpuBuffer,
    targets: &GpuBuffer,
    g: &GpuBuffer,
    ignore_index: Option<u32>,
    rows: usize,
    v: usize,
    count: usize,
) -> Result<GpuBuffer> {
    let inv_count = if count == 0 { 0.0 } else { 1.0 / count as f32 };
    let dlogits = ctx.alloc((rows * v) as u64 * 4)?;
    let p = params(rows, v, ignore_index, inv_count);
    ctx.launch(
        &KERNEL,
        "cross_entropy_backward",
        &p,
        &[logits, targets, g, &dlogits],
        ctx.grid(rows as u64, 1),
    )?;
    Ok(dlogits)
}
