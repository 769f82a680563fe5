//! Launchers for `shaders/conv1d.wgsl` (causal depthwise conv1d, channels last).

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::backend::params::ConvDims;
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("conv1d");
/// Rows (batch * time) per partial sum of the parameter gradients; `CHUNK` in the shader.
const CHUNK: usize = 64;

fn params(dims: ConvDims, chunks: usize) -> [u32; 5] {
    [
        (dims.b * dims.l) as u32,
        dims.l as u32,
        dims.c as u32,
        dims.k as u32,
        chunks as u32,
    ]
}

/// y: [b, l, c]. Without a bias the kernel reads a zero-filled one.
pub fn causal_conv1d(
    ctx: &Arc<WgpuContext>,
    x: &GpuBuffer,
    weight: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    dims: ConvDims,
) -> Result<GpuBuffer> {
    let n = (dims.b * dims.l * dims.c) as u64;
    let zeros;
    let bias = match bias {
        Some(b) => b,
        None => {
            zeros = ctx.zeros(dims.c * 4)?;
            &zeros
        }
    };
    let y = ctx.alloc(n * 4)?;
    ctx.launch(
        &KERNEL,
        "causal_conv1d",
        &params(dims, 0),
        &[x, weight, bias, &y],
        ctx.grid(n, 256),
    )?;
    Ok(y)
}

/// dx: [b, l, c] from g: [b, l, c].
pub fn causal_conv1d_backward_x(
    ctx: &Arc<WgpuContext>,
    g: &GpuBuffer,
    weight: &GpuBuffer,
    dims: ConvDims,
) -> Result<GpuBuffer> {
    let n = (dims.b * dims.l * dims.c) as u64;
    let dx = ctx.alloc(n * 4)?;
    ctx.launch(
        &KERNEL,
        "causal_conv1d_backward_x",
        &params(dims, 0),
        &[g, weight, &dx],
        ctx.grid(n, 256),
    )?;
    Ok(dx)
}

/// (dweight [c, k], dbias [c]): per-chunk partial sums over rows, then an ordered column sum.
pub fn causal_conv1d_backward_params(
    ctx: &Arc<WgpuContext>,
    x: &GpuBuffer,
    g: &GpuBuffer,
    dims: ConvDims,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let ConvDims { b, l, c, k } = dims;
    let chunks = (b * l).div_ceil(CHUNK);
    let dweight_parts = ctx.alloc((chunks * c * k) as u64 * 4)?;
    let dbias_parts = ctx.alloc((chunks * c) as u64 * 4)?;
    let n = (chunks * (k + 1) * c) as u64;
    ctx.launch(
        &KERNEL,
        "causal_conv1d_backward_params",
        &params(dims, chunks),
        &[x, g, &dweight_parts, &dbias_parts],
        ctx.grid(n, 256),
    )?;
    let dweight = super::reduce::sum_columns(ctx, &dweight_parts, chunks, c * k)?;
    let dbias = super::reduce::sum_columns(ctx, &dbias_parts, chunks, c)?;
    Ok((dweight, dbias))
}
