//! Launchers for `shaders/cross_entropy.wgsl` (row-wise log-softmax and the fused cross-entropy).
//! Every entry works row by row, so [rows, v] buffers over the per-binding limit (the logits of a
//! big vocabulary) run as chunks of rows (`WgpuContext::row_chunks`), each a launch of its own.

use std::sync::Arc;

use super::{Binding, GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("cross_entropy");

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

/// One buffer of an entry point: sliced by rows with this many bytes per row, or bound whole.
type Arg<'a> = (&'a GpuBuffer, Option<u64>);

/// Launches `entry` over `rows` rows (one workgroup each), in chunks of rows whose slices of the
/// sliced buffers fit the per-binding limit.
fn launch_rows(
    ctx: &Arc<WgpuContext>,
    entry: &'static str,
    rows: usize,
    v: usize,
    ignore_index: Option<u32>,
    inv_count: f32,
    args: &[Arg],
) -> Result<()> {
    let row_bytes: Vec<u64> = args.iter().filter_map(|a| a.1).collect();
    for chunk in ctx.row_chunks(entry, rows, &row_bytes)? {
        let bindings: Vec<Binding> = args
            .iter()
            .map(|&(buffer, row)| match row {
                Some(bytes) => Binding::rows(buffer, chunk.clone(), rows, bytes),
                None => Binding::whole(buffer),
            })
            .collect();
        ctx.launch_bindings(
            &KERNEL,
            entry,
            &params(chunk.len(), v, ignore_index, inv_count),
            &bindings,
            ctx.grid(chunk.len() as u64, 1),
        )?;
    }
    Ok(())
}

/// x: [rows, v] -> log_softmax over v; one workgroup per row.
pub fn log_softmax(
    ctx: &Arc<WgpuContext>,
    x: &GpuBuffer,
    rows: usize,
    v: usize,
) -> Result<GpuBuffer> {
    let y = ctx.alloc((rows * v) as u64 * 4)?;
    let row = v as u64 * 4;
    launch_rows(
        ctx,
        "log_softmax",
        rows,
        v,
        None,
        0.0,
        &[(x, Some(row)), (&y, Some(row))],
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
    let row = v as u64 * 4;
    launch_rows(
        ctx,
        "log_softmax_backward",
        rows,
        v,
        None,
        0.0,
        &[(x, Some(row)), (g, Some(row)), (&dx, Some(row))],
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
    launch_rows(
        ctx,
        "cross_entropy_rows",
        rows,
        v,
        ignore_index,
        inv_count,
        &[
            (logits, Some(v as u64 * 4)),
            (targets, Some(4)),
            (&row_loss, Some(4)),
        ],
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
    let row = v as u64 * 4;
    launch_rows(
        ctx,
        "cross_entropy_backward",
        rows,
        v,
        ignore_index,
        inv_count,
        &[
            (logits, Some(row)),
            (targets, Some(4)),
            (g, None),
            (&dlogits, Some(row)),
        ],
    )?;
    Ok(dlogits)
}
