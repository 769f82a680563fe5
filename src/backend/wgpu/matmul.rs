//! Launcher for `shaders/matmul.wgsl`: C [M, N] = op(A) op(B), 64x64 tiles of C per workgroup.

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::{Error, Result};

const KERNEL: Kernel = crate::kernel!("matmul");

/// Rows and columns of C one workgroup computes (TILE in the shader).
const TILE: u64 = 64;

/// `a` holds op(A) [M, K] (stored [K, M] when `trans_a`), `b` holds op(B) [K, N] (stored [N, K]
/// when `trans_b`); returns C [M, N]. Every element of C is written, also when K is zero.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    ctx: &Arc<WgpuContext>,
    a: &GpuBuffer,
    b: &GpuBuffer,
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
) -> Result<GpuBuffer> {
    let out = ctx.alloc((m * n) as u64 * 4)?;
    if m == 0 || n == 0 {
        return Ok(out);
    }
    // Column tiles on x, row tiles folded over y and z past the per-dimension limit.
    let max = ctx.limits().max_compute_workgroups_per_dimension.min(65535) as u64;
    let (tiles_m, tiles_n) = ((m as u64).div_ceil(TILE), (n as u64).div_ceil(TILE));
    let (y, z) = (tiles_m.min(max), tiles_m.div_ceil(max));
    if tiles_n > max || z > max {
        return Err(Error::InvalidArgument {
            op: "matmul",
            detail: format!(
                "[{m}, {k}] x [{k}, {n}] needs more than {max} x {max} x {max} workgroups of 64x64"
            ),
        });
    }
    let params = [m as u32, k as u32, n as u32, trans_a as u32, trans_b as u32];
    ctx.launch(
        &KERNEL,
        "matmul",
        &params,
        &[a, b, &out],
        [tiles_n as u32, y as u32, z as u32],
    )?;
    Ok(out)
}
