//! Launchers for `shaders/shape.wgsl`: narrow, its backward, and concat, each a few block copies.
//! Shapes as in `backend::cpu::shape`: a tensor is viewed as [outer, cols] so that a slice along
//! any dimension is a block of whole columns.

use std::sync::Arc;

use super::{GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("shape");

/// One `copy_block` dispatch: a [rows, width] block from `src` ([rows, src_cols], starting at
/// column `src_col`) into `dst` ([rows, dst_cols], at column `dst_col`). Field order is the WGSL
/// `Params` order.
struct Block {
    rows: usize,
    width: usize,
    src_cols: usize,
    src_col: usize,
    dst_cols: usize,
    dst_col: usize,
}

fn copy_block(ctx: &WgpuContext, src: &GpuBuffer, dst: &GpuBuffer, b: Block) -> Result<()> {
    if b.rows * b.width == 0 {
        return Ok(());
    }
    // One contiguous range (a slice along the first dimension, such as a weight's rows): a buffer
    // copy, which binds nothing and so fits any binding limit.
    if b.rows == 1 || (b.width == b.src_cols && b.width == b.dst_cols) {
        let bytes = (b.rows * b.width * 4) as u64;
        let (src_at, dst_at) = ((b.src_col * 4) as u64, (b.dst_col * 4) as u64);
        return ctx.copy_range((src, src_at), (dst, dst_at), bytes);
    }
    let params = [
        b.rows, b.width, b.src_cols, b.src_col, b.dst_cols, b.dst_col,
    ]
    .map(|v| v as u32);
    ctx.launch(
        &KERNEL,
        "copy_block",
        &params,
        &[src, dst],
        ctx.grid((b.rows * b.width) as u64, 256),
    )
}

/// x: [outer, cols] -> [outer, width], columns start..start + width.
pub fn narrow(
    ctx: &Arc<WgpuContext>,
    x: &GpuBuffer,
    outer: usize,
    cols: usize,
    start: usize,
    width: usize,
) -> Result<GpuBuffer> {
    let out = ctx.alloc((outer * width * 4) as u64)?;
    copy_block(
        ctx,
        x,
        &out,
        Block {
            rows: outer,
            width,
            src_cols: cols,
            src_col: start,
            dst_cols: width,
            dst_col: 0,
        },
    )?;
    Ok(out)
}

/// g: [outer, width] -> [outer, cols]: g in columns start..start + width, zeros elsewhere.
pub fn narrow_backward(
    ctx: &Arc<WgpuContext>,
    g: &GpuBuffer,
    outer: usize,
    cols: usize,
    start: usize,
    width: usize,
) -> Result<GpuBuffer> {
    let out = ctx.zeros(outer * cols * 4)?;
    copy_block(
        ctx,
        g,
        &out,
        Block {
            rows: outer,
            width,
            src_cols: width,
            src_col: 0,
            dst_cols: cols,
            dst_col: start,
        },
    )?;
    Ok(out)
}

/// parts: (buffer [outer, cols_i], cols_i) -> [outer, sum_i cols_i]. The parts' blocks tile the
/// output, so together the copies write every element of the fresh buffer.
pub fn concat(
    ctx: &Arc<WgpuContext>,
    parts: &[(&GpuBuffer, usize)],
    outer: usize,
) -> Result<GpuBuffer> {
    let total: usize = parts.iter().map(|&(_, c)| c).sum();
    let out = ctx.alloc((outer * total * 4) as u64)?;
    let mut at = 0;
    for &(src, cols) in parts {
        copy_block(
            ctx,
            src,
            &out,
            Block {
                rows: outer,
                width: cols,
                src_cols: cols,
                src_col: 0,
                dst_cols: total,
                dst_col: at,
            },
        )?;
        at += cols;
    }
    Ok(out)
}
