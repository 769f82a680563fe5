//! Launchers for `shaders/rollout.wgsl`: the planner's per-row top-k, Gumbel-max sampling and
//! certainty, forward only. Every entry works row by row (one workgroup each), so [rows, v] logits
//! over the per-binding limit run as chunks of rows (`WgpuContext::row_chunks`), each a launch.

use std::sync::Arc;

use super::{Binding, GpuBuffer, Kernel, WgpuContext};
use crate::backend::params::SampleDraw;
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("rollout");

/// The uniform block {rows, v, k, flags, seed, stream_base, counter, inv_t, row_offset} of a
/// chunk of `rows` rows starting at `row_offset`.
#[derive(Clone, Copy, Default)]
struct Params {
    v: usize,
    k: usize,
    flags: u32,
    draw: Option<SampleDraw>,
}

impl Params {
    fn words(&self, rows: usize, row_offset: usize) -> [u32; 9] {
        let d = self.draw.unwrap_or(SampleDraw {
            temperature: 1.0,
            seed: 0,
            stream_base: 0,
            counter: 0,
        });
        let inv_t = if d.temperature == 0.0 {
            0.0
        } else {
            1.0 / d.temperature
        };
        [
            rows as u32,
            self.v as u32,
            self.k as u32,
            self.flags,
            d.seed,
            d.stream_base,
            d.counter,
            inv_t.to_bits(),
            row_offset as u32,
        ]
    }
}

/// Launches `entry` over `rows` rows, each buffer sliced by rows of the given bytes, in chunks
/// whose slices fit the per-binding limit.
fn launch_rows(
    ctx: &Arc<WgpuContext>,
    entry: &'static str,
    rows: usize,
    params: Params,
    args: &[(&GpuBuffer, u64)],
) -> Result<()> {
    let row_bytes: Vec<u64> = args.iter().map(|a| a.1).collect();
    for chunk in ctx.row_chunks(entry, rows, &row_bytes)? {
        let bindings: Vec<Binding> = args
            .iter()
            .map(|&(buffer, bytes)| Binding::rows(buffer, chunk.clone(), rows, bytes))
            .collect();
        ctx.launch_bindings(
            &KERNEL,
            entry,
            &params.words(chunk.len(), chunk.start),
            &bindings,
            ctx.grid(chunk.len() as u64, 1),
        )?;
    }
    Ok(())
}

/// logits [rows, v] -> (values [rows, k], indices [rows, k] u32), best first; with `log_probs`
/// the values are log-softmax values under the whole row.
pub fn top_k(
    ctx: &Arc<WgpuContext>,
    logits: &GpuBuffer,
    rows: usize,
    v: usize,
    k: usize,
    log_probs: bool,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let (values, indices) = (
        ctx.alloc((rows * k) as u64 * 4)?,
        ctx.alloc((rows * k) as u64 * 4)?,
    );
    let params = Params {
        v,
        k,
        flags: log_probs as u32,
        draw: None,
    };
    let out_row = k as u64 * 4;
    launch_rows(
        ctx,
        "top_k",
        rows,
        params,
        &[
            (logits, v as u64 * 4),
            (&values, out_row),
            (&indices, out_row),
        ],
    )?;
    Ok((values, indices))
}

/// logits [rows, n] -> [rows] u32, one Gumbel-max draw per row (greedy at temperature 0).
pub fn sample_logits(
    ctx: &Arc<WgpuContext>,
    logits: &GpuBuffer,
    rows: usize,
    n: usize,
    draw: SampleDraw,
) -> Result<GpuBuffer> {
    let ids = ctx.alloc(rows as u64 * 4)?;
    let params = Params {
        v: n,
        k: 0,
        flags: if draw.temperature == 0.0 { 2 } else { 0 },
        draw: Some(draw),
    };
    launch_rows(
        ctx,
        "sample_logits",
        rows,
        params,
        &[(logits, n as u64 * 4), (&ids, 4)],
    )?;
    Ok(ids)
}

/// logits [rows, v] -> [rows]: sum_j p_j ln p_j of softmax(row).
pub fn certainty(
    ctx: &Arc<WgpuContext>,
    logits: &GpuBuffer,
    rows: usize,
    v: usize,
) -> Result<GpuBuffer> {
    let out = ctx.alloc(rows as u64 * 4)?;
    let params = Params {
        v,
        ..Params::default()
    };
    launch_rows(
        ctx,
        "certainty",
        rows,
        params,
        &[(logits, v as u64 * 4), (&out, 4)],
    )?;
    Ok(out)
}
