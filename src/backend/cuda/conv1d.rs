//! Launchers for `shaders/cuda/conv1d.cu`: the causal depthwise conv1d, its input gradient, and
//! its parameter gradients as per-chunk partials added in order by `reduce::sum_columns_slice`.

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, grid, launch};
use super::reduce::sum_columns_slice;
use crate::backend::params::ConvDims;
use crate::error::Result;

/// Rows of B L one partial sums serially.
const PARAM_CHUNK: usize = 256;

fn sizes(dims: ConvDims) -> [u64; 4] {
    [dims.b, dims.l, dims.c, dims.k].map(|v| v as u64)
}

pub fn causal_conv1d(
    dev: &Arc<CudaDevice>,
    x: &CudaBuffer,
    weight: &CudaBuffer,
    bias: Option<&CudaBuffer>,
    dims: ConvDims,
) -> Result<CudaBuffer> {
    const OP: &str = "causal_conv1d";
    let (xs, w) = (x.f32(OP, "x")?, weight.f32(OP, "weight")?);
    // Without a bias the kernel reads none (has_bias = 0); any f32 slice fills the argument.
    let b = match bias {
        Some(b) => b.f32(OP, "bias")?,
        None => w,
    };
    let has_bias = bias.is_some() as u32;
    let n = dims.b * dims.l * dims.c;
    let mut y = dev.alloc_f32(n)?;
    let o = y.f32_mut(OP, "y")?;
    let [bb, l, c, k] = sizes(dims);
    launch!(dev, "conv1d", "causal_conv1d", grid(n); xs, w, b, &has_bias, o, &bb, &l, &c, &k);
    Ok(y)
}

pub fn causal_conv1d_backward_x(
    dev: &Arc<CudaDevice>,
    g: &CudaBuffer,
    weight: &CudaBuffer,
    dims: ConvDims,
) -> Result<CudaBuffer> {
    const OP: &str = "causal_conv1d_backward_x";
    let (g, w) = (g.f32(OP, "g")?, weight.f32(OP, "weight")?);
    let n = dims.b * dims.l * dims.c;
    let mut dx = dev.alloc_f32(n)?;
    let o = dx.f32_mut(OP, "dx")?;
    let [bb, l, c, k] = sizes(dims);
    launch!(dev, "conv1d", "causal_conv1d_backward_x", grid(n); g, w, o, &bb, &l, &c, &k);
    Ok(dx)
}

/// (dweight [C, K], dbias [C]).
pub fn causal_conv1d_backward_params(
    dev: &Arc<CudaDevice>,
    x: &CudaBuffer,
    g: &CudaBuffer,
    dims: ConvDims,
) -> Result<(CudaBuffer, CudaBuffer)> {
    const OP: &str = "causal_conv1d_backward_params";
    let (xs, gs) = (x.f32(OP, "x")?, g.f32(OP, "g")?);
    let width = dims.k * dims.c + dims.c;
    let chunks = (dims.b * dims.l).div_ceil(PARAM_CHUNK);
    let [bb, l, c, k] = sizes(dims);
    let mut part = dev.alloc_f32(chunks * width)?;
    {
        let p = part.f32_mut(OP, "partials")?;
        let chunk = PARAM_CHUNK as u64;
        launch!(dev, "conv1d", "conv1d_param_partials", grid(chunks * width); xs, gs, p, &bb, &l, &c, &k, &chunk);
    }
    let total = sum_columns_slice(dev, part.f32(OP, "partials")?, chunks, width)?;
    let mut dweight = dev.alloc_f32(dims.c * dims.k)?;
    let mut dbias = dev.alloc_f32(dims.c)?;
    {
        let t = total.f32(OP, "total")?;
        let (dw, db) = (dweight.f32_mut(OP, "dweight")?, dbias.f32_mut(OP, "dbias")?);
        launch!(dev, "conv1d", "conv1d_param_finish", grid(width); t, dw, db, &c, &k);
    }
    Ok((dweight, dbias))
}
