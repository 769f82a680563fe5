//! Launcher for `shaders/cuda/adamw.cu`: the fused AdamW update with the host's step factors.

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, grid, launch};
use crate::backend::params::{AdamWFactors, AdamWStep};
use crate::error::Result;

/// [param, m, v] after one update of n elements.
pub fn adamw_step(
    dev: &Arc<CudaDevice>,
    inputs: [&CudaBuffer; 4],
    n: usize,
    step: &AdamWStep,
    f: &AdamWFactors,
) -> Result<[CudaBuffer; 3]> {
    const OP: &str = "adamw_step";
    let [p, g, m, v] = inputs;
    let (p, g, m, v) = (
        p.f32(OP, "param")?,
        g.f32(OP, "grad")?,
        m.f32(OP, "m")?,
        v.f32(OP, "v")?,
    );
    let (mut p2, mut m2, mut v2) = (dev.alloc_f32(n)?, dev.alloc_f32(n)?, dev.alloc_f32(n)?);
    {
        let (po, mo, vo) = (
            p2.f32_mut(OP, "param")?,
            m2.f32_mut(OP, "m")?,
            v2.f32_mut(OP, "v")?,
        );
        let n64 = n as u64;
        let (b1, b2, eps, gs) = (step.beta1, step.beta2, step.eps, step.grad_scale);
        let (decay, step_size, bc2) = (f.decay, f.step_size, f.bias_correction2_sqrt);
        launch!(dev, "adamw", "adamw_step", grid(n);
            p, g, m, v, po, mo, vo, &n64, &b1, &b2, &eps, &gs, &decay, &step_size, &bc2);
    }
    Ok([p2, m2, v2])
}
