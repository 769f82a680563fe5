//! Launchers for `shaders/embedding.wgsl`: the row gather and its deterministic scatter-add.

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = crate::kernel!("embedding");

/// ids: [n] (all < v), table: [v, d] -> [n, d].
pub fn embedding(
    ctx: &Arc<WgpuContext>,
    ids: &GpuBuffer,
    table: &GpuBuffer,
    n: usize,
    v: usize,
    d: usize,
) -> Result<GpuBuffer> {
    let out = ctx.alloc((n * d * 4) as u64)?;
    ctx.launch(
        &KERNEL,
        "embedding",
        &[n as u32, d as u32, v as u32],
        &[ids, table, &out],
        ctx.grid((n * d) as u64, 256),
    )?;
    Ok(out)
}

/// The shader's backward plan for host ids [n]: [rows: u][offsets: u + 1][positions: n] (see the
/// shader header), and u. A stable sort of the positions by id groups each row's tokens while
/// keeping them in token order.
fn plan(ids: &[u32]) -> (Vec<u32>, usize) {
    let mut positions: Vec<u32> = (0..ids.len() as u32).collect();
    positions.sort_by_key(|&t| ids[t as usize]);
    let mut rows = Vec::new();
    let mut offsets = Vec::new();
    for (q, &t) in positions.iter().enumerate() {
        let id = ids[t as usize];
        if rows.last() != Some(&id) {
            rows.push(id);
            offsets.push(q as u32);
        }
    }
    offsets.push(positions.len() as u32);
    let u = rows.len();
    rows.extend(offsets);
    rows.extend(positions);
    (rows, u)
}

/// ids: [n] on the host (all < v), g: [n, d] -> grad of the table [v, d]; rows no id names are 0.
pub fn embedding_backward(
    ctx: &Arc<WgpuContext>,
    ids: &[u32],
    g: &GpuBuffer,
    v: usize,
    d: usize,
) -> Result<GpuBuffer> {
    let (plan, u) = plan(ids);
    let plan = ctx.upload(bytemuck::cast_slice(&plan))?;
    let grad = ctx.zeros(v * d * 4)?;
    ctx.launch(
        &KERNEL,
        "embedding_backward",
        &[u as u32, d as u32, 0],
        &[&plan, g, &grad],
        ctx.grid((u * d) as u64, 256),
    )?;
    Ok(grad)
}
