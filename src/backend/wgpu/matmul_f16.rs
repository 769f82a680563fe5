//! Mixed-precision products: C [M, N] = op(A) op(B) with both operands rounded to f16 first
//! (`to_f16` in `shaders/matmul_f16_operands.wgsl`, one pass each) and the product accumulated in
//! f32 by matmul.wgsl's kernel built with f16 operands (launched, split across the binding limit,
//! by `matmul.rs`). Only on a context opened with `SHADER_F16` (`WgpuContext::supports_f16`).

use std::sync::Arc;

use super::matmul::{Product, product};
use super::{Binding, GpuBuffer, Kernel, WgpuContext};
use crate::error::{Error, Result};

/// matmul.wgsl with f16 operands, and the `to_f16` pass.
const KERNEL: Kernel = super::kernel!("matmul_f16" = "matmul_f16_operands", "matmul");

const F16: u64 = 2;

fn require_f16(ctx: &WgpuContext, op: &'static str) -> Result<()> {
    if ctx.supports_f16() {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        op,
        detail: format!("{} does not offer shader-f16", ctx.describe()),
    })
}

/// `n` f32 values -> `n` f16 values (2 bytes each), rounded to nearest; overflow gives infinity.
/// Elementwise, so buffers over the per-binding limit run as chunks of elements.
pub fn to_f16(ctx: &Arc<WgpuContext>, x: &GpuBuffer, n: usize) -> Result<GpuBuffer> {
    require_f16(ctx, "to_f16")?;
    let out = ctx.alloc(n as u64 * F16)?;
    for part in ctx.row_chunks("to_f16", n, &[4, F16])? {
        ctx.launch_bindings(
            &KERNEL,
            "to_f16",
            &[part.len() as u32],
            &[
                Binding::rows(x, part.clone(), n, 4),
                Binding::rows(&out, part.clone(), n, F16),
            ],
            ctx.grid(part.len() as u64, 256),
        )?;
    }
    Ok(out)
}

/// As `wgpu::matmul::matmul` (same operand layouts and flags; `a`, `b` f32), with f16 operands.
#[allow(clippy::too_many_arguments)]
pub fn matmul_f16(
    ctx: &Arc<WgpuContext>,
    a: &GpuBuffer,
    b: &GpuBuffer,
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
) -> Result<GpuBuffer> {
    require_f16(ctx, "matmul_f16")?;
    let (a16, b16) = (to_f16(ctx, a, m * k)?, to_f16(ctx, b, k * n)?);
    let shape = Product {
        m,
        k,
        n,
        trans_a,
        trans_b,
    };
    product(ctx, &KERNEL, "matmul_f16", F16, &a16, &b16, shape)
}
