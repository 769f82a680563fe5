//! Launchers for `shaders/cuda/embedding.cu`: the row gather and its deterministic scatter-add
//! (through a plan of each distinct id's token positions, built on the host from the ids the op
//! already holds there).

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, grid, launch};
use crate::backend::params::EmbeddingDims;
use crate::error::Result;

/// Rows of table [v, d] picked by ids [n] -> [n, d].
pub fn embedding(
    dev: &Arc<CudaDevice>,
    ids: &CudaBuffer,
    table: &CudaBuffer,
    dims: EmbeddingDims,
) -> Result<CudaBuffer> {
    let EmbeddingDims { n, d, .. } = dims;
    let (ids, table) = (
        ids.u32("embedding", "ids")?,
        table.f32("embedding", "table")?,
    );
    let mut out = dev.alloc_f32(n * d)?;
    let o = out.f32_mut("embedding", "out")?;
    let (n64, d64) = (n as u64, d as u64);
    launch!(dev, "embedding", "embedding", grid(n * d); ids, table, o, &n64, &d64);
    Ok(out)
}

/// [rows: u][offsets: u + 1][positions: n]: the distinct ids in increasing order and, per id, its
/// token positions in token order (`shaders/cuda/embedding.cu`).
fn plan(ids: &[u32]) -> (usize, Vec<u32>) {
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    // Stable: equal ids keep token order.
    order.sort_by_key(|&t| ids[t as usize]);
    let mut rows = Vec::new();
    let mut offsets = Vec::new();
    for (q, &t) in order.iter().enumerate() {
        let id = ids[t as usize];
        if rows.last() != Some(&id) {
            rows.push(id);
            offsets.push(q as u32);
        }
    }
    offsets.push(order.len() as u32);
    let u = rows.len();
    let mut plan = rows;
    plan.extend(offsets);
    plan.extend(order);
    (u, plan)
}

/// g [n, d] added into the rows the ids name of a zero [v, d] table, in token order.
pub fn embedding_backward(
    dev: &Arc<CudaDevice>,
    host_ids: &[u32],
    g: &CudaBuffer,
    dims: EmbeddingDims,
) -> Result<CudaBuffer> {
    let EmbeddingDims { v, d, .. } = dims;
    let g = g.f32("embedding_backward", "g")?;
    let mut grad = dev.zeros_f32(v * d)?;
    let (u, plan) = plan(host_ids);
    let plan = dev.upload_u32(&plan)?;
    let p = plan.u32("embedding_backward", "plan")?;
    let o = grad.f32_mut("embedding_backward", "grad")?;
    let (u64_, d64) = (u as u64, d as u64);
    launch!(dev, "embedding", "embedding_backward", grid(u * d); p, g, o, &u64_, &d64);
    Ok(grad)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_plan_lists_distinct_ids_and_their_positions_in_token_order() {
        let (u, plan) = super::plan(&[5, 2, 5, 7, 2]);
        assert_eq!(u, 3);
        assert_eq!(plan, [2, 5, 7, 0, 2, 4, 5, 1, 4, 0, 2, 3]);
    }
}
