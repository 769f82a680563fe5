//! Launchers for `shaders/cuda/rollout.cu`: the planner's per-row top-k, Gumbel-max sampling and
//! certainty, forward only, one block per row.

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, blocks, launch};
use crate::backend::params::SampleDraw;
use crate::error::{Error, Result};

/// The largest k the kernel's per-thread lists hold (MAX_K in rollout.cu; the op checks it too).
const MAX_K: usize = 64;

/// logits [rows, v] -> (values [rows, k], indices [rows, k] u32), best first.
pub fn top_k(
    dev: &Arc<CudaDevice>,
    logits: &CudaBuffer,
    rows: usize,
    v: usize,
    k: usize,
    log_probs: bool,
) -> Result<(CudaBuffer, CudaBuffer)> {
    let op = if log_probs {
        "topk_log_softmax"
    } else {
        "top_k"
    };
    if k == 0 || k > MAX_K || v > u32::MAX as usize {
        return Err(Error::InvalidArgument {
            op,
            detail: format!("k = {k} must be in 1..={MAX_K} and v = {v} below 2^32"),
        });
    }
    let x = logits.f32(op, "logits")?;
    let (mut values, mut indices) = (dev.alloc_f32(rows * k)?, dev.alloc_u32(rows * k)?);
    {
        let (vo, io) = (
            values.f32_mut(op, "values")?,
            indices.u32_mut(op, "indices")?,
        );
        let (r64, v64, k32, lp) = (rows as u64, v as u64, k as u32, log_probs as u32);
        launch!(dev, "rollout", "top_k", blocks(rows, 256); x, vo, io, &r64, &v64, &k32, &lp);
    }
    Ok((values, indices))
}

/// logits [rows, n] -> [rows] u32, one Gumbel-max draw per row (greedy at temperature 0).
pub fn sample_logits(
    dev: &Arc<CudaDevice>,
    logits: &CudaBuffer,
    rows: usize,
    n: usize,
    draw: SampleDraw,
) -> Result<CudaBuffer> {
    const OP: &str = "sample_logits";
    if n > u32::MAX as usize {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: format!("n = {n} must be below 2^32"),
        });
    }
    let x = logits.f32(OP, "logits")?;
    let mut ids = dev.alloc_u32(rows)?;
    let o = ids.u32_mut(OP, "ids")?;
    let greedy = draw.temperature == 0.0;
    // The reciprocal the cpu twin multiplies by, computed the same way on the host.
    let inv_t = if greedy {
        0.0f32
    } else {
        1.0 / draw.temperature
    };
    let (r64, n64, g) = (rows as u64, n as u64, greedy as u32);
    let (seed, base, counter) = (draw.seed, draw.stream_base, draw.counter);
    launch!(dev, "rollout", "sample_logits", blocks(rows, 256); x, o, &r64, &n64, &seed, &base, &counter, &inv_t, &g);
    Ok(ids)
}

/// logits [rows, v] -> [rows]: sum_j p_j ln p_j of softmax(row).
pub fn certainty(
    dev: &Arc<CudaDevice>,
    logits: &CudaBuffer,
    rows: usize,
    v: usize,
) -> Result<CudaBuffer> {
    let x = logits.f32("certainty", "logits")?;
    let mut out = dev.alloc_f32(rows)?;
    let o = out.f32_mut("certainty", "out")?;
    let (r64, v64) = (rows as u64, v as u64);
    launch!(dev, "rollout", "certainty", blocks(rows, 256); x, o, &r64, &v64);
    Ok(out)
}
