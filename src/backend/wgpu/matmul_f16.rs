//! Launcher for `shaders/matmul_f16.wgsl`: C [M, N] = op(A) op(B) with both operands rounded to
//! f16 first (`to_f16`, one pass each) and the product accumulated in f32 (mixed precision).
//! Only on a context opened with `SHADER_F16` (`WgpuContext::supports_f16`).

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::{Error, Result};

const KERNEL: Kernel = crate::kernel!("matmul_f16");

/// Rows and columns of C one workgroup computes (TILE in the shader, as in matmul.wgsl).
const TILE: u64 = 64;

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
pub fn to_f16(ctx: &Arc<WgpuContext>, x: &GpuBuffer, n: usize) -> Result<GpuBuffer> {
    require_f16(ctx, "to_f16")?;
    let out = ctx.alloc(n as u64 * 2)?;
    ctx.launch(
        &KERNEL,
        "to_f16",
        &[n as u32],
        &[x, &out],
        ctx.grid(n as u64, 256),
    )?;
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
    let out = ctx.alloc((m * n) as u64 * 4)?;
    if m == 0 || n == 0 {
        return Ok(out);
    }
    let (a16, b16) = (to_f16(ctx, a, m * k)?, to_f16(ctx, b, k * n)?);
    // The grid of matmul.rs: column tiles on x, row tiles folded over y and z.
    let max = ctx.limits().max_compute_workgroups_per_dimension.min(65535) as u64;
    let (tiles_m, tiles_n) = ((m as u64).div_ceil(TILE), (n as u64).div_ceil(TILE));
    let (y, z) = (tiles_m.min(max), tiles_m.div_ceil(max));
    if tiles_n > max || z > max {
        return Err(Error::InvalidArgument {
            op: "matmul_f16",
            detail: format!(
                "[{m}, {k}] x [{k}, {n}] needs more than {max} x {max} x {max} workgroups of 64x64"
            ),
        });
    }
    let params = [m as u32, k as u32, n as u32, trans_a as u32, trans_b as u32];
    ctx.launch(
        &KERNEL,
        "matmul_f16",
        &params,
        &[&a16, &b16, &out],
        [tiles_n as u32, y as u32, z as u32],
    )?;
    Ok(out)
}
