//! Launchers for `shaders/layer_mix.wgsl` (hierarchical policy fusion).

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("layer_mix");
/// Values of one layer per dot-product partial in the backward pass; `CHUNK` in the shader.
const CHUNK: usize = 4096;

/// softmax(logits): [layers].
fn softmax(ctx: &Arc<WgpuContext>, logits: &GpuBuffer, layers: usize) -> Result<GpuBuffer> {
    let s = ctx.alloc(layers as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        "layer_mix_softmax",
        &[layers as u32, 0, 0],
        &[logits, &s],
        [1, 1, 1],
    )?;
    Ok(s)
}

/// xs: [layers, m], logits: [layers] -> [m].
pub fn layer_mix(
    ctx: &Arc<WgpuContext>,
    xs: &GpuBuffer,
    logits: &GpuBuffer,
    layers: usize,
    m: usize,
) -> Result<GpuBuffer> {
    let s = softmax(ctx, logits, layers)?;
    let out = ctx.alloc(m as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        "layer_mix",
        &[layers as u32, m as u32, 0],
        &[xs, &s, &out],
        ctx.grid(m as u64, 256),
    )?;
    Ok(out)
}

/// (dxs [layers, m], dlogits [layers]) from the output's gradient g: [m].
pub fn layer_mix_backward(
    ctx: &Arc<WgpuContext>,
    xs: &GpuBuffer,
    logits: &GpuBuffer,
    g: &GpuBuffer,
    layers: usize,
    m: usize,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let s = softmax(ctx, logits, layers)?;
    let chunks = m.div_ceil(CHUNK);
    let params = [layers as u32, m as u32, chunks as u32];
    let dxs = ctx.alloc((layers * m) as u64 * 4)?;
    let dot_parts = ctx.alloc((layers * chunks) as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        "layer_mix_backward",
        &params,
        &[xs, &s, g, &dxs, &dot_parts],
        ctx.grid((layers * chunks) as u64, 1),
    )?;
    let dlogits = ctx.alloc(layers as u64 * 4)?;
    ctx.launch(
        &KERNEL,
        "layer_mix_backward_logits",
        &params,
        &[&s, &dot_parts, &dlogits],
        [1, 1, 1],
    )?;
    Ok((dxs, dlogits))
}
