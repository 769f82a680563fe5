//! Launcher for `shaders/adamw.wgsl`: the fused AdamW update, three fresh outputs.

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;
use crate::ops::{AdamWFactors, AdamWStep};

const KERNEL: Kernel = crate::kernel!("adamw");

/// [param, grad, m, v], each [n] -> [new param, new m, new v], each [n].
pub fn adamw_step(
    ctx: &Arc<WgpuContext>,
    inputs: [&GpuBuffer; 4],
    n: usize,
    s: &AdamWStep,
    f: &AdamWFactors,
) -> Result<[GpuBuffer; 3]> {
    let [param, grad, m, v] = inputs;
    let out = [
        ctx.alloc(n as u64 * 4)?,
        ctx.alloc(n as u64 * 4)?,
        ctx.alloc(n as u64 * 4)?,
    ];
    let params = [
        n as u32,
        s.beta1.to_bits(),
        s.beta2.to_bits(),
        s.eps.to_bits(),
        s.grad_scale.to_bits(),
        f.decay.to_bits(),
        f.step_size.to_bits(),
        f.bias_correction2_sqrt.to_bits(),
    ];
    ctx.launch(
        &KERNEL,
        "adamw_step",
        &params,
        &[param, grad, m, v, &out[0], &out[1], &out[2]],
        ctx.grid(n as u64, 256),
    )?;
    Ok(out)
}
