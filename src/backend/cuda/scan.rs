//! Launchers for `shaders/cuda/scan.cu`: the selective scan forward (saving the state before every
//! `SCAN_CHUNK` steps), its backward (recomputing each chunk from the saved state), and the sums
//! of the backward's partials through `reduce::sum_columns_slice`, in a fixed order.

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, blocks, launch};
use super::reduce::sum_columns_slice;
use crate::backend::params::{SCAN_MAX_STATE, ScanDims, ScanForward, ScanGrads, ScanInputs};
use crate::error::{Error, Result};

/// Threads per backward block: per_group channels with all their states.
const WG: usize = 256;

fn check(dims: ScanDims, op: &'static str) -> Result<()> {
    if dims.state == 0 || dims.state > SCAN_MAX_STATE {
        return Err(Error::InvalidArgument {
            op,
            detail: format!(
                "the state size {} must be in 1..={SCAN_MAX_STATE}",
                dims.state
            ),
        });
    }
    Ok(())
}

/// The backward's layout: channels per block and blocks per batch element.
fn layout(dims: ScanDims) -> (usize, usize) {
    let per_group = WG / dims.state;
    (per_group, dims.chan.div_ceil(per_group))
}

fn sizes(dims: ScanDims) -> [u64; 5] {
    [dims.batch, dims.len, dims.chan, dims.state, dims.n_chunks()].map(|v| v as u64)
}

/// y [B, L, E], the last state [B, E, N] and, when `save`, the chunk-boundary states.
pub fn selective_scan(
    dev: &Arc<CudaDevice>,
    dims: ScanDims,
    x: ScanInputs<&CudaBuffer>,
    save: bool,
) -> Result<ScanForward<CudaBuffer>> {
    const OP: &str = "selective_scan";
    check(dims, OP)?;
    let ScanDims {
        batch,
        len,
        chan,
        state,
    } = dims;
    let s = x.try_map(|b, arg| b.f32(OP, arg))?;
    let mut y = dev.alloc_f32(batch * len * chan)?;
    let mut last = dev.alloc_f32(batch * chan * state)?;
    let mut saved = if save {
        dev.alloc_f32(batch * dims.n_chunks() * chan * state)?
    } else {
        dev.alloc_f32(1)?
    };
    let flags = s.z.is_some() as u32 | (s.h0.is_some() as u32) << 1 | (save as u32) << 2;
    // Absent z / h0: any f32 slice fills the argument; the kernel never reads it (flags).
    let (z, h0) = (s.z.unwrap_or(s.u), s.h0.unwrap_or(s.u));
    {
        let (yo, lo, so) = (
            y.f32_mut(OP, "y")?,
            last.f32_mut(OP, "last")?,
            saved.f32_mut(OP, "saved")?,
        );
        let [b64, l64, e64, n64, nc64] = sizes(dims);
        let cfg = blocks((batch * chan).div_ceil(64), 64);
        launch!(dev, "scan", "selective_scan", cfg;
            s.u, s.delta, s.a, s.b, s.c, s.d, z, h0, yo, lo, so, &b64, &l64, &e64, &n64, &nc64, &flags);
    }
    Ok(ScanForward {
        y,
        last,
        saved: save.then_some(saved),
    })
}

/// Every gradient of a scan from y's gradient `gy` and the forward's saved states.
pub fn selective_scan_backward(
    dev: &Arc<CudaDevice>,
    dims: ScanDims,
    x: ScanInputs<&CudaBuffer>,
    saved: &CudaBuffer,
    gy: &CudaBuffer,
) -> Result<ScanGrads<CudaBuffer>> {
    const OP: &str = "selective_scan_backward";
    check(dims, OP)?;
    let ScanDims {
        batch,
        len,
        chan,
        state,
    } = dims;
    let s = x.try_map(|b, arg| b.f32(OP, arg))?;
    let (saved, gy) = (saved.f32(OP, "saved")?, gy.f32(OP, "gy")?);
    let (per_group, groups) = layout(dims);
    let (ble, bln, en) = (batch * len * chan, batch * len * state, chan * state);
    let mut du = dev.alloc_f32(ble)?;
    let mut ddelta = dev.alloc_f32(ble)?;
    let mut dz = dev.alloc_f32(if s.z.is_some() { ble } else { 1 })?;
    // dh0 and the dA, dD partials stay zero where no step ran (L = 0).
    let mut dh0 = dev.zeros_f32(batch * en)?;
    let mut db_part = dev.alloc_f32(groups * bln)?;
    let mut dc_part = dev.alloc_f32(groups * bln)?;
    let mut da_part = dev.zeros_f32(batch * en)?;
    let mut dd_part = dev.zeros_f32(batch * chan)?;
    let flags = s.z.is_some() as u32;
    let z = s.z.unwrap_or(s.u);
    {
        let outs = (
            du.f32_mut(OP, "du")?,
            ddelta.f32_mut(OP, "ddelta")?,
            dz.f32_mut(OP, "dz")?,
            dh0.f32_mut(OP, "dh0")?,
        );
        let parts = (
            db_part.f32_mut(OP, "db_part")?,
            dc_part.f32_mut(OP, "dc_part")?,
            da_part.f32_mut(OP, "da_part")?,
            dd_part.f32_mut(OP, "dd_part")?,
        );
        let [b64, l64, e64, n64, nc64] = sizes(dims);
        let (g64, pg64) = (groups as u64, per_group as u64);
        launch!(dev, "scan", "selective_scan_backward", blocks(batch * groups, WG as u32);
            s.u, s.delta, s.a, s.b, s.c, s.d, z, saved, gy,
            outs.0, outs.1, outs.2, outs.3, parts.0, parts.1, parts.2, parts.3,
            &b64, &l64, &e64, &n64, &nc64, &flags, &g64, &pg64);
    }
    // Deterministic sums of the partials: over blocks for dB, dC; over the batch for dA, dD.
    let sum_rows = |part: CudaBuffer, rows: usize, cols: usize| -> Result<CudaBuffer> {
        if rows == 1 {
            Ok(part)
        } else {
            sum_columns_slice(dev, part.f32(OP, "partials")?, rows, cols)
        }
    };
    Ok(ScanGrads {
        du,
        ddelta,
        da: sum_rows(da_part, batch, en)?,
        db: sum_rows(db_part, groups, bln)?,
        dc: sum_rows(dc_part, groups, bln)?,
        dd: sum_rows(dd_part, batch, chan)?,
        dz: s.z.map(|_| dz),
        dh0,
    })
}
