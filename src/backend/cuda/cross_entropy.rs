//! Launchers for `shaders/cuda/cross_entropy.cu`: log-softmax, its backward, and the mean
//! cross-entropy (per-row losses, `reduce::sum_slice`, then the division by the count).

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, blocks, launch};
use super::reduce::sum_slice;
use crate::backend::params::CrossEntropyDims;
use crate::error::Result;

pub fn log_softmax(
    dev: &Arc<CudaDevice>,
    x: &CudaBuffer,
    rows: usize,
    v: usize,
) -> Result<CudaBuffer> {
    let x = x.f32("log_softmax", "x")?;
    let mut out = dev.alloc_f32(rows * v)?;
    let o = out.f32_mut("log_softmax", "out")?;
    let (r64, v64) = (rows as u64, v as u64);
    launch!(dev, "cross_entropy", "log_softmax", blocks(rows, 256); x, o, &r64, &v64);
    Ok(out)
}

pub fn log_softmax_backward(
    dev: &Arc<CudaDevice>,
    x: &CudaBuffer,
    g: &CudaBuffer,
    rows: usize,
    v: usize,
) -> Result<CudaBuffer> {
    const OP: &str = "log_softmax_backward";
    let (x, g) = (x.f32(OP, "x")?, g.f32(OP, "g")?);
    let mut out = dev.alloc_f32(rows * v)?;
    let o = out.f32_mut(OP, "out")?;
    let (r64, v64) = (rows as u64, v as u64);
    launch!(dev, "cross_entropy", "log_softmax_backward", blocks(rows, 256); x, g, o, &r64, &v64);
    Ok(out)
}

/// (ignore, has_ignore) as the kernels take them.
fn ignore(dims: CrossEntropyDims) -> (u32, u32) {
    (
        dims.ignore_index.unwrap_or(0),
        dims.ignore_index.is_some() as u32,
    )
}

/// The mean loss over counted rows, one element.
pub fn cross_entropy(
    dev: &Arc<CudaDevice>,
    logits: &CudaBuffer,
    targets: &CudaBuffer,
    dims: CrossEntropyDims,
) -> Result<CudaBuffer> {
    const OP: &str = "cross_entropy";
    let (x, t) = (logits.f32(OP, "logits")?, targets.u32(OP, "targets")?);
    let mut losses = dev.alloc_f32(dims.rows)?;
    let (ig, has) = ignore(dims);
    let (r64, v64) = (dims.rows as u64, dims.v as u64);
    {
        let l = losses.f32_mut(OP, "losses")?;
        launch!(dev, "cross_entropy", "cross_entropy_rows", blocks(dims.rows, 256); x, t, l, &r64, &v64, &ig, &has);
    }
    let total = sum_slice(dev, losses.f32(OP, "losses")?, dims.rows, false)?;
    let mut out = dev.alloc_f32(1)?;
    {
        let (s, o) = (total.f32(OP, "total")?, out.f32_mut(OP, "out")?);
        let count = dims.count as u64;
        launch!(dev, "cross_entropy", "cross_entropy_mean", blocks(1, 1); s, o, &count);
    }
    Ok(out)
}

/// dlogits [rows, v] from the loss's gradient g (one element, read on the device).
pub fn cross_entropy_backward(
    dev: &Arc<CudaDevice>,
    logits: &CudaBuffer,
    targets: &CudaBuffer,
    g: &CudaBuffer,
    dims: CrossEntropyDims,
) -> Result<CudaBuffer> {
    const OP: &str = "cross_entropy_backward";
    let (x, t, g) = (
        logits.f32(OP, "logits")?,
        targets.u32(OP, "targets")?,
        g.f32(OP, "g")?,
    );
    let mut out = dev.alloc_f32(dims.rows * dims.v)?;
    let o = out.f32_mut(OP, "out")?;
    let (ig, has) = ignore(dims);
    let (r64, v64, count) = (dims.rows as u64, dims.v as u64, dims.count as u64);
    launch!(dev, "cross_entropy", "cross_entropy_backward", blocks(dims.rows, 256); x, t, g, o, &r64, &v64, &ig, &has, &count);
    Ok(out)
}
