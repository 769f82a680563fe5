//! Launcher for `shaders/matmul.wgsl`: C [M, N] = op(A) op(B), 64x64 tiles of C per workgroup.
//!
//! Operands over the per-binding limit (the [V, D] lm_head weight of a big vocabulary, [T, V]
//! logits and their gradient) are bound as blocks of their stored rows: A along M (along K when
//! stored transposed), B along K (along N when stored transposed), C along M. Each axis is split
//! by `WgpuContext::row_chunks` for the operands stored along it, and every (M, N, K) block is one
//! launch; the blocks of K after the first add into C.

use std::ops::Range;
use std::sync::Arc;

use super::{Binding, GpuBuffer, Kernel, WgpuContext};
use crate::error::{Error, Result};

/// matmul.wgsl with f32 operands.
const KERNEL: Kernel = super::kernel!("matmul" = "matmul_f32_operands", "matmul");

/// Rows and columns of C one workgroup computes (TILE in the shader).
const TILE: u64 = 64;

const F32: u64 = 4;

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
    let shape = Product {
        m,
        k,
        n,
        trans_a,
        trans_b,
    };
    product(ctx, &KERNEL, "matmul", F32, a, b, shape)
}

/// The sizes and transpose flags of one product.
#[derive(Clone, Copy)]
pub(super) struct Product {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// C [M, N] (f32) = op(A) op(B) with `kernel`, a build of matmul.wgsl whose operands have
/// `operand_bytes` bytes per element, split into launches that fit the binding limit.
pub(super) fn product(
    ctx: &Arc<WgpuContext>,
    kernel: &Kernel,
    op: &'static str,
    operand_bytes: u64,
    a: &GpuBuffer,
    b: &GpuBuffer,
    shape: Product,
) -> Result<GpuBuffer> {
    let Product {
        m,
        k,
        n,
        trans_a,
        trans_b,
    } = shape;
    let out = ctx.alloc((m * n) as u64 * F32)?;
    if m == 0 || n == 0 {
        return Ok(out);
    }
    // Bytes per stored row of each operand sliced along each axis.
    let (a_row, b_row, c_row) = (
        if trans_a { m } else { k } as u64 * operand_bytes,
        if trans_b { k } else { n } as u64 * operand_bytes,
        n as u64 * F32,
    );
    let along_m: Vec<u64> = [Some(c_row), (!trans_a).then_some(a_row)]
        .into_iter()
        .flatten()
        .collect();
    let along_n: Vec<u64> = trans_b.then_some(b_row).into_iter().collect();
    let along_k: Vec<u64> = [trans_a.then_some(a_row), (!trans_b).then_some(b_row)]
        .into_iter()
        .flatten()
        .collect();
    let m_chunks = ctx.row_chunks(op, m, &along_m)?;
    let n_chunks = ctx.row_chunks(op, n, &along_n)?;
    let k_chunks = ctx.row_chunks(op, k, &along_k)?;
    for ms in &m_chunks {
        for ns in &n_chunks {
            for (i, ks) in k_chunks.iter().enumerate() {
                let (a_bind, a_off) = if trans_a {
                    (Binding::rows(a, ks.clone(), k, a_row), ms.start)
                } else {
                    (Binding::rows(a, ms.clone(), m, a_row), ks.start)
                };
                let (b_bind, b_off) = if trans_b {
                    (Binding::rows(b, ns.clone(), n, b_row), ks.start)
                } else {
                    (Binding::rows(b, ks.clone(), k, b_row), ns.start)
                };
                let c_bind = Binding::rows(&out, ms.clone(), m, c_row);
                let params = [
                    ms.len(),
                    ks.len(),
                    ns.len(),
                    trans_a as usize,
                    trans_b as usize,
                    (a_row / operand_bytes) as usize,
                    (b_row / operand_bytes) as usize,
                    n,
                    a_off,
                    b_off,
                    ns.start,
                    (i > 0) as usize,
                ]
                .map(|x| x as u32);
                ctx.launch_bindings(
                    kernel,
                    "matmul",
                    &params,
                    &[a_bind, b_bind, c_bind],
                    groups(ctx, op, ms, ns, k)?,
                )?;
            }
        }
    }
    Ok(out)
}

/// Column tiles on x, row tiles folded over y and z past the per-dimension limit.
fn groups(
    ctx: &WgpuContext,
    op: &'static str,
    ms: &Range<usize>,
    ns: &Range<usize>,
    k: usize,
) -> Result<[u32; 3]> {
    let (m, n) = (ms.len(), ns.len());
    let max = ctx.limits().max_compute_workgroups_per_dimension.min(65535) as u64;
    let (tiles_m, tiles_n) = ((m as u64).div_ceil(TILE), (n as u64).div_ceil(TILE));
    let (y, z) = (tiles_m.min(max), tiles_m.div_ceil(max));
    if tiles_n > max || z > max {
        return Err(Error::InvalidArgument {
            op,
            detail: format!(
                "[{m}, {k}] x [{k}, {n}] needs more than {max} x {max} x {max} workgroups of 64x64"
            ),
        });
    }
    Ok([tiles_n as u32, y as u32, z as u32])
}
