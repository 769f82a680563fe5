//! Launchers for `shaders/cuda/gru.cu`: the GRU cell's fused gates and their backward.

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, grid, launch};
use crate::error::Result;

/// gi, gh [B, 3H], h [B, H] -> h' [B, H].
pub fn gru_gates(
    dev: &Arc<CudaDevice>,
    gi: &CudaBuffer,
    gh: &CudaBuffer,
    h: &CudaBuffer,
    batch: usize,
    hidden: usize,
) -> Result<CudaBuffer> {
    const OP: &str = "gru_gates";
    let (gi, gh, h) = (gi.f32(OP, "gi")?, gh.f32(OP, "gh")?, h.f32(OP, "h")?);
    let mut out = dev.alloc_f32(batch * hidden)?;
    let o = out.f32_mut(OP, "out")?;
    let (b64, h64) = (batch as u64, hidden as u64);
    launch!(dev, "gru", "gru_gates", grid(batch * hidden); gi, gh, h, o, &b64, &h64);
    Ok(out)
}

/// (d gi, d gh, d h).
pub fn gru_gates_backward(
    dev: &Arc<CudaDevice>,
    inputs: [&CudaBuffer; 4],
    batch: usize,
    hidden: usize,
) -> Result<(CudaBuffer, CudaBuffer, CudaBuffer)> {
    const OP: &str = "gru_gates_backward";
    let [gi, gh, h, g] = inputs;
    let (gi, gh, h, g) = (
        gi.f32(OP, "gi")?,
        gh.f32(OP, "gh")?,
        h.f32(OP, "h")?,
        g.f32(OP, "g")?,
    );
    let (mut dgi, mut dgh, mut dh) = (
        dev.alloc_f32(batch * 3 * hidden)?,
        dev.alloc_f32(batch * 3 * hidden)?,
        dev.alloc_f32(batch * hidden)?,
    );
    {
        let (a, b, c) = (
            dgi.f32_mut(OP, "dgi")?,
            dgh.f32_mut(OP, "dgh")?,
            dh.f32_mut(OP, "dh")?,
        );
        let (b64, h64) = (batch as u64, hidden as u64);
        launch!(dev, "gru", "gru_gates_backward", grid(batch * hidden); gi, gh, h, g, a, b, c, &b64, &h64);
    }
    Ok((dgi, dgh, dh))
}
