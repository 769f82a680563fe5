//! Launcher for `shaders/adamw.wgsl`: the fused AdamW update, three fresh outputs. Elementwise,
//! so a parameter over the per-binding limit (a big vocabulary's embedding) runs as chunks of
//! elements.

use std::sync::Arc;

use super::{Binding, GpuBuffer, Kernel, WgpuContext};
use crate::backend::params::{AdamWFactors, AdamWStep};
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("adamw");

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
    let mut params = [
        n as u32,
        s.beta1.to_bits(),
        s.beta2.to_bits(),
        s.eps.to_bits(),
        s.grad_scale.to_bits(),
        f.decay.to_bits(),
        f.step_size.to_bits(),
        f.bias_correction2_sqrt.to_bits(),
    ];
    for part in ctx.row_chunks("adamw_step", n, &[4])? {
        let bind = |b| Binding::rows(b, part.clone(), n, 4);
        params[0] = part.len() as u32;
        ctx.launch_bindings(
            &KERNEL,
            "adamw_step",
            &params,
            &[
                bind(param),
                bind(grad),
                bind(m),
                bind(v),
                bind(&out[0]),
                bind(&out[1]),
                bind(&out[2]),
            ],
            ctx.grid(part.len() as u64, 256),
        )?;
    }
    Ok(out)
}
