//! Launchers for `shaders/cuda/rmsnorm.cu`: one block per row; the weight's gradient leaves as
//! per-row terms that `reduce::sum_columns_slice` adds in row order.

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, blocks, launch};
use super::reduce::sum_columns_slice;
use crate::error::Result;

pub fn rms_norm(
    dev: &Arc<CudaDevice>,
    x: &CudaBuffer,
    weight: &CudaBuffer,
    rows: usize,
    d: usize,
    eps: f32,
) -> Result<CudaBuffer> {
    const OP: &str = "rms_norm";
    let (x, w) = (x.f32(OP, "x")?, weight.f32(OP, "weight")?);
    let mut out = dev.alloc_f32(rows * d)?;
    let o = out.f32_mut(OP, "out")?;
    let (r64, d64) = (rows as u64, d as u64);
    launch!(dev, "rmsnorm", "rms_norm", blocks(rows, 256); x, w, o, &r64, &d64, &eps);
    Ok(out)
}

/// (dx [rows, d], dweight [d]).
pub fn rms_norm_backward(
    dev: &Arc<CudaDevice>,
    x: &CudaBuffer,
    weight: &CudaBuffer,
    g: &CudaBuffer,
    rows: usize,
    d: usize,
    eps: f32,
) -> Result<(CudaBuffer, CudaBuffer)> {
    const OP: &str = "rms_norm_backward";
    let (x, w, g) = (x.f32(OP, "x")?, weight.f32(OP, "weight")?, g.f32(OP, "g")?);
    let mut dx = dev.alloc_f32(rows * d)?;
    let mut part = dev.alloc_f32(rows * d)?;
    {
        let (o, p) = (dx.f32_mut(OP, "dx")?, part.f32_mut(OP, "dw_part")?);
        let (r64, d64) = (rows as u64, d as u64);
        launch!(dev, "rmsnorm", "rms_norm_backward", blocks(rows, 256); x, w, g, o, p, &r64, &d64, &eps);
    }
    let dw = sum_columns_slice(dev, part.f32(OP, "dw_part")?, rows, d)?;
    Ok((dx, dw))
}
