//! Launchers for `shaders/embedding.wgsl`: the row gather and its deterministic scatter-add. A
//! table over the per-binding limit is bound a chunk of rows at a time (`WgpuContext::row_chunks`).

use std::sync::Arc;

use super::{Binding, GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("embedding");

/// ids: [n] (all < v), table: [v, d] -> [n, d]. Tokens are chunked too when out [n, d] is over
/// the limit; each (token chunk, table chunk) launch writes the tokens whose id is in its rows.
pub fn embedding(
    ctx: &Arc<WgpuContext>,
    ids: &GpuBuffer,
    table: &GpuBuffer,
    n: usize,
    v: usize,
    d: usize,
) -> Result<GpuBuffer> {
    let op = "embedding";
    let out = ctx.alloc((n * d * 4) as u64)?;
    let row = d as u64 * 4;
    let table_chunks = ctx.row_chunks(op, v, &[row])?;
    for tokens in ctx.row_chunks(op, n, &[4, row])? {
        for rows in &table_chunks {
            let params = [tokens.len(), d, rows.len(), rows.start, 0].map(|x| x as u32);
            ctx.launch_bindings(
                &KERNEL,
                op,
                &params,
                &[
                    Binding::rows(ids, tokens.clone(), n, 4),
                    Binding::rows(table, rows.clone(), v, row),
                    Binding::rows(&out, tokens.clone(), n, row),
                ],
                ctx.grid((tokens.len() * d) as u64, 256),
            )?;
        }
    }
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
/// Over the per-binding limit, the grad is written a chunk of table rows at a time (each launch
/// sums the plan's rows in its chunk: the plan's rows are sorted, so they are a contiguous run),
/// and g is read a chunk of tokens at a time, each chunk's sums added to the earlier ones' in
/// token order, so the result is the same bit for bit.
pub fn embedding_backward(
    ctx: &Arc<WgpuContext>,
    ids: &[u32],
    g: &GpuBuffer,
    v: usize,
    d: usize,
) -> Result<GpuBuffer> {
    let op = "embedding_backward";
    let row = d as u64 * 4;
    let table_chunks = ctx.row_chunks(op, v, &[row])?;
    let grad = ctx.zeros(v * d * 4)?;
    for tokens in ctx.row_chunks(op, ids.len(), &[row])? {
        let (plan, u) = plan(&ids[tokens.clone()]);
        let distinct = &plan[..u];
        let plan_buffer = ctx.upload(bytemuck::cast_slice(&plan))?;
        for rows in &table_chunks {
            let k0 = distinct.partition_point(|&id| (id as usize) < rows.start);
            let k1 = distinct.partition_point(|&id| (id as usize) < rows.end);
            if k0 == k1 {
                continue;
            }
            let params = [u, d, k0, rows.start, k1 - k0].map(|x| x as u32);
            ctx.launch_bindings(
                &KERNEL,
                op,
                &params,
                &[
                    Binding::whole(&plan_buffer),
                    Binding::rows(g, tokens.clone(), ids.len(), row),
                    Binding::rows(&grad, rows.clone(), v, row),
                ],
                ctx.grid(((k1 - k0) * d) as u64, 256),
            )?;
        }
    }
    Ok(grad)
}
