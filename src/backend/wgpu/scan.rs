//! Launchers for `shaders/scan.wgsl`: the selective scan forward, its backward, and the sums of
//! the backward's partials (through `reduce::sum_columns`).
//!
//! Every binding must fit `max_storage_buffer_binding_size`; a scan whose largest binding does not
//! returns `Error::BindingTooLarge` naming `selective_scan`. The batch is not split yet: launches
//! can bind row slices (`binding.rs`), so the scan could run per chunk of batch rows like the
//! vocabulary-sized ops do, but its [B, L, N] and [B, nc, E, N] buffers would need their own
//! chunks (B L E floats reach 128 MiB only at B L = 21845 for mamba-130m's E = 1536).

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext, reduce};
use crate::backend::params::{ScanDims, ScanForward, ScanGrads};
use crate::error::{Error, Result};

const KERNEL: Kernel = super::kernel!("scan" = "scan", "sigmoid");
const WG: usize = 256;
const OP: &str = "selective_scan";

/// Storage bindings of the largest entry point (selective_scan_backward).
const BINDINGS: u32 = 17;

/// selective_scan_backward's layout: channels per workgroup (each with all N of its states) and workgroups
/// per batch element.
fn layout(dims: ScanDims) -> (usize, usize) {
    let per_group = WG / dims.state;
    (per_group, dims.chan.div_ceil(per_group))
}

fn params(dims: ScanDims, flags: u32) -> [u32; 8] {
    let (per_group, groups) = layout(dims);
    let ScanDims {
        batch,
        len,
        chan,
        state,
    } = dims;
    let w = [batch, len, chan, state, groups, per_group, dims.n_chunks()].map(|v| v as u32);
    [w[0], w[1], w[2], w[3], w[4], w[5], w[6], flags]
}

/// Fails with a clear error when the adapter cannot bind this scan's buffers.
fn check_limits(ctx: &WgpuContext, largest: u64) -> Result<()> {
    let limits = ctx.limits();
    if limits.max_storage_buffers_per_shader_stage < BINDINGS {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: format!(
                "the scan kernels need {BINDINGS} storage buffers per shader stage, this adapter offers {}",
                limits.max_storage_buffers_per_shader_stage
            ),
        });
    }
    let limit = limits.max_storage_buffer_binding_size;
    if largest > limit {
        return Err(Error::BindingTooLarge {
            op: OP,
            bytes: largest,
            limit,
        });
    }
    Ok(())
}

/// Forward: y [B, L, E], the last state [B, E, N] and, when `save`, the chunk-boundary states
/// [B, nc, E, N] the backward starts from.
#[allow(clippy::too_many_arguments)]
pub fn selective_scan(
    ctx: &Arc<WgpuContext>,
    dims: ScanDims,
    u: &GpuBuffer,
    delta: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    c: &GpuBuffer,
    d: &GpuBuffer,
    z: Option<&GpuBuffer>,
    h0: Option<&GpuBuffer>,
    save: bool,
) -> Result<ScanForward<GpuBuffer>> {
    let ScanDims {
        batch,
        len,
        chan,
        state,
    } = dims;
    let (ble, bln, ben) = (
        batch * len * chan,
        batch * len * state,
        batch * chan * state,
    );
    let saved_len = batch * dims.n_chunks() * chan * state;
    check_limits(ctx, 4 * ble.max(bln).max(ben).max(saved_len) as u64)?;
    let y = ctx.alloc(ble as u64 * 4)?;
    let last = ctx.alloc(ben as u64 * 4)?;
    let saved = ctx.alloc(if save { saved_len as u64 * 4 } else { 4 })?;
    // Absent inputs are bound to a placeholder the kernel never reads (flags say which).
    let placeholder = ctx.alloc(4)?;
    let flags = z.is_some() as u32 | (h0.is_some() as u32) << 1 | (save as u32) << 2;
    let (z, h0) = (z.unwrap_or(&placeholder), h0.unwrap_or(&placeholder));
    ctx.launch(
        &KERNEL,
        "selective_scan",
        &params(dims, flags),
        &[u, delta, a, b, c, d, z, h0, &y, &last, &saved],
        ctx.grid((batch * chan) as u64, 64),
    )?;
    Ok(ScanForward {
        y,
        last,
        saved: save.then_some(saved),
    })
}

/// Backward from y's gradient `gy` and the forward's checkpoints `saved`: every input's gradient.
#[allow(clippy::too_many_arguments)]
pub fn selective_scan_backward(
    ctx: &Arc<WgpuContext>,
    dims: ScanDims,
    u: &GpuBuffer,
    delta: &GpuBuffer,
    a: &GpuBuffer,
    b: &GpuBuffer,
    c: &GpuBuffer,
    d: &GpuBuffer,
    z: Option<&GpuBuffer>,
    saved: &GpuBuffer,
    gy: &GpuBuffer,
) -> Result<ScanGrads<GpuBuffer>> {
    let ScanDims {
        batch,
        len,
        chan,
        state,
    } = dims;
    let (_, groups) = layout(dims);
    let (ble, bln, en) = (batch * len * chan, batch * len * state, chan * state);
    check_limits(
        ctx,
        4 * ble.max(groups * bln).max(batch * dims.n_chunks() * en) as u64,
    )?;
    let du = ctx.alloc(ble as u64 * 4)?;
    let ddelta = ctx.alloc(ble as u64 * 4)?;
    let dz = if z.is_some() {
        ctx.alloc(ble as u64 * 4)?
    } else {
        ctx.alloc(4)?
    };
    let dh0 = ctx.alloc((batch * en) as u64 * 4)?;
    let db_part = ctx.alloc((groups * bln) as u64 * 4)?;
    let dc_part = ctx.alloc((groups * bln) as u64 * 4)?;
    let da_part = ctx.alloc((batch * en) as u64 * 4)?;
    let dd_part = ctx.alloc((batch * chan) as u64 * 4)?;
    let placeholder = ctx.alloc(4)?;
    let flags = z.is_some() as u32;
    ctx.launch(
        &KERNEL,
        "selective_scan_backward",
        &params(dims, flags),
        &[
            u,
            delta,
            a,
            b,
            c,
            d,
            z.unwrap_or(&placeholder),
            saved,
            gy,
            &du,
            &ddelta,
            &dz,
            &dh0,
            &db_part,
            &dc_part,
            &da_part,
            &dd_part,
        ],
        ctx.grid((batch * groups) as u64, 1),
    )?;
    // Deterministic sums of the partials: over workgroups for dB, dC; over the batch for dA, dD.
    let sum_rows = |part: GpuBuffer, rows: usize, cols: usize| {
        if rows == 1 {
            Ok(part)
        } else {
            reduce::sum_columns(ctx, &part, rows, cols)
        }
    };
    Ok(ScanGrads {
        du,
        ddelta,
        da: sum_rows(da_part, batch, en)?,
        db: sum_rows(db_part, groups, bln)?,
        dc: sum_rows(dc_part, groups, bln)?,
        dd: sum_rows(dd_part, batch, chan)?,
        dz: z.map(|_| dz),
        dh0,
    })
}
