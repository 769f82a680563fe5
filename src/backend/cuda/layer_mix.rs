//! Launchers for `shaders/cuda/layer_mix.cu`: the softmax-weighted sum of the layers' outputs and
//! its backward (the dot products by one block per layer, then the logits' gradient).

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, blocks, grid, launch};
use crate::error::Result;

/// xs [layers, m], logits [layers] -> [m].
pub fn layer_mix(
    dev: &Arc<CudaDevice>,
    xs: &CudaBuffer,
    logits: &CudaBuffer,
    layers: usize,
    m: usize,
) -> Result<CudaBuffer> {
    const OP: &str = "layer_mix";
    let (xs, lg) = (xs.f32(OP, "xs")?, logits.f32(OP, "logits")?);
    let mut out = dev.alloc_f32(m)?;
    let o = out.f32_mut(OP, "out")?;
    let (l64, m64) = (layers as u64, m as u64);
    launch!(dev, "layer_mix", "layer_mix", grid(m); xs, lg, o, &l64, &m64);
    Ok(out)
}

/// (dxs [layers, m], dlogits [layers]).
pub fn layer_mix_backward(
    dev: &Arc<CudaDevice>,
    xs: &CudaBuffer,
    logits: &CudaBuffer,
    g: &CudaBuffer,
    layers: usize,
    m: usize,
) -> Result<(CudaBuffer, CudaBuffer)> {
    const OP: &str = "layer_mix_backward";
    let (xs, lg, g) = (
        xs.f32(OP, "xs")?,
        logits.f32(OP, "logits")?,
        g.f32(OP, "g")?,
    );
    let (l64, m64) = (layers as u64, m as u64);
    let mut dxs = dev.alloc_f32(layers * m)?;
    let mut dots = dev.alloc_f32(layers)?;
    let mut dlogits = dev.alloc_f32(layers)?;
    {
        let o = dxs.f32_mut(OP, "dxs")?;
        launch!(dev, "layer_mix", "layer_mix_dxs", grid(layers * m); lg, g, o, &l64, &m64);
    }
    {
        let d = dots.f32_mut(OP, "dots")?;
        launch!(dev, "layer_mix", "layer_mix_dots", blocks(layers, 256); xs, g, d, &l64, &m64);
    }
    {
        let (d, o) = (dots.f32(OP, "dots")?, dlogits.f32_mut(OP, "dlogits")?);
        launch!(dev, "layer_mix", "layer_mix_dlogits", blocks(layers, 1).map(|mut c| { c.grid_dim.0 = 1; c }); lg, d, o, &l64);
    }
    Ok((dxs, dlogits))
}
