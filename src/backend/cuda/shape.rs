//! Launchers for `shaders/cuda/shape.cu`: narrow, concat and narrow's backward, all one block
//! copy between row-major matrices (f32, u32 and bf16 elements moved bit for bit).

use std::sync::Arc;

use cudarc::driver::CudaSlice;

use super::buffer::{CudaBuffer, Words};
use super::context::{CudaDevice, grid, launch};
use crate::backend::params::ColumnBlock;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// Where a block goes: rows x width elements, from (src_cols, src_col) to (dst_cols, dst_col).
#[derive(Clone, Copy)]
struct Copy {
    rows: usize,
    width: usize,
    src_cols: usize,
    src_col: usize,
    dst_cols: usize,
    dst_col: usize,
}

fn copy32(
    dev: &Arc<CudaDevice>,
    src: &CudaSlice<impl Sized>,
    dst: &mut CudaSlice<impl Sized>,
    c: Copy,
) -> Result<()> {
    let [rows, width, sc, s0, dc, d0] = [
        c.rows, c.width, c.src_cols, c.src_col, c.dst_cols, c.dst_col,
    ]
    .map(|v| v as u64);
    launch!(dev, "shape", "copy_block32", grid(c.rows * c.width); src, dst, &rows, &width, &sc, &s0, &dc, &d0);
    Ok(())
}

fn copy16(
    dev: &Arc<CudaDevice>,
    src: &CudaSlice<u16>,
    dst: &mut CudaSlice<u16>,
    c: Copy,
) -> Result<()> {
    let [rows, width, sc, s0, dc, d0] = [
        c.rows, c.width, c.src_cols, c.src_col, c.dst_cols, c.dst_col,
    ]
    .map(|v| v as u64);
    launch!(dev, "shape", "copy_block16", grid(c.rows * c.width); src, dst, &rows, &width, &sc, &s0, &dc, &d0);
    Ok(())
}

/// The block of columns of x viewed as [outer, cols] -> [outer, width].
pub fn narrow(
    dev: &Arc<CudaDevice>,
    x: &CudaBuffer,
    dtype: DType,
    block: ColumnBlock,
) -> Result<CudaBuffer> {
    let ColumnBlock {
        outer,
        cols,
        col,
        width,
    } = block;
    let c = Copy {
        rows: outer,
        width,
        src_cols: cols,
        src_col: col,
        dst_cols: width,
        dst_col: 0,
    };
    let n = outer * width;
    match (dtype, x.words()) {
        (DType::F32, Words::F32(s)) => {
            let mut out = dev.alloc_f32(n)?;
            copy32(dev, s, out.f32_mut("narrow", "out")?, c)?;
            Ok(out)
        }
        (DType::U32, Words::U32(s)) => {
            let mut out = dev.alloc_u32(n)?;
            copy32(dev, s, out.u32_mut("narrow", "out")?, c)?;
            Ok(out)
        }
        (DType::BF16, Words::Bf16(s)) => {
            let mut out = dev.alloc_bf16(n)?;
            copy16(dev, s, out.bf16_mut("narrow", "out")?, c)?;
            Ok(out)
        }
        _ => Err(Error::InvalidArgument {
            op: "narrow",
            detail: format!("x does not hold {dtype:?} values"),
        }),
    }
}

/// g [outer, width] placed in a zero [outer, cols].
pub fn narrow_backward(
    dev: &Arc<CudaDevice>,
    g: &CudaBuffer,
    block: ColumnBlock,
) -> Result<CudaBuffer> {
    let ColumnBlock {
        outer,
        cols,
        col,
        width,
    } = block;
    let g = g.f32("narrow_backward", "g")?;
    let mut out = dev.zeros_f32(outer * cols)?;
    let c = Copy {
        rows: outer,
        width,
        src_cols: width,
        src_col: 0,
        dst_cols: cols,
        dst_col: col,
    };
    copy32(dev, g, out.f32_mut("narrow_backward", "out")?, c)?;
    Ok(out)
}

/// Parts [outer, width_i] side by side -> [outer, sum width_i] (f32 or u32).
pub fn concat(
    dev: &Arc<CudaDevice>,
    parts: &[(&CudaBuffer, usize)],
    outer: usize,
    dtype: DType,
) -> Result<CudaBuffer> {
    let cols: usize = parts.iter().map(|p| p.1).sum();
    let mut out = match dtype {
        DType::F32 => dev.alloc_f32(outer * cols)?,
        DType::U32 => dev.alloc_u32(outer * cols)?,
        DType::BF16 => {
            return Err(Error::InvalidArgument {
                op: "concat",
                detail: "xs must be f32 or u32 (bf16 is for weights)".to_string(),
            });
        }
    };
    let mut col = 0;
    for &(part, width) in parts {
        let c = Copy {
            rows: outer,
            width,
            src_cols: width,
            src_col: 0,
            dst_cols: cols,
            dst_col: col,
        };
        match dtype {
            DType::F32 => copy32(
                dev,
                part.f32("concat", "xs")?,
                out.f32_mut("concat", "out")?,
                c,
            )?,
            _ => copy32(
                dev,
                part.u32("concat", "xs")?,
                out.u32_mut("concat", "out")?,
                c,
            )?,
        }
        col += width;
    }
    Ok(out)
}
