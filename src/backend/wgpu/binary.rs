//! Launchers for `shaders/binary.wgsl` (add, mul with `b` repeated over `a`'s leading dimensions).
//! Over the per-binding limit `a` and the output run as chunks of whole repeats of `b` (b bound
//! whole), or, when `b` is as long as `a`, all three as chunks of elements.

use std::sync::Arc;

use super::{Binding, GpuBuffer, Kernel, WgpuContext};
use crate::error::Result;

const KERNEL: Kernel = super::kernel!("binary");

/// `entry` is `add` or `mul`; `n` elements of `a`, `nb` of `b`.
pub fn binary(
    ctx: &Arc<WgpuContext>,
    entry: &'static str,
    a: &GpuBuffer,
    b: &GpuBuffer,
    n: usize,
    nb: usize,
) -> Result<GpuBuffer> {
    let out = ctx.alloc(n as u64 * 4)?;
    // Rows of `row` elements: single elements when b is sliced alongside, else one repeat of b.
    let slice_b = nb == n;
    let row = if slice_b { 1 } else { nb.max(1) };
    let rows = n / row;
    for part in ctx.row_chunks(entry, rows, &[row as u64 * 4])? {
        let bind = |x| Binding::rows(x, part.clone(), rows, row as u64 * 4);
        let b_bind = if slice_b { bind(b) } else { Binding::whole(b) };
        let len = part.len() * row;
        ctx.launch_bindings(
            &KERNEL,
            entry,
            &[len as u32, if slice_b { len } else { nb } as u32],
            &[bind(a), b_bind, bind(&out)],
            ctx.grid(len as u64, 256),
        )?;
    }
    Ok(out)
}
