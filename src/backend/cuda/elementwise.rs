//! Launchers for `shaders/cuda/binary.cu` and `unary.cu`: the elementwise ops and the backward
//! passes of silu and softplus.

use std::sync::Arc;

use super::buffer::CudaBuffer;
use super::context::{CudaDevice, grid, launch};
use crate::backend::params::{BinaryOp, UnaryOp};
use crate::error::{Error, Result};

/// a [n] op b [nb] (b repeated over a's rows).
pub fn binary(
    dev: &Arc<CudaDevice>,
    op: BinaryOp,
    a: &CudaBuffer,
    b: &CudaBuffer,
    n: usize,
    nb: usize,
) -> Result<CudaBuffer> {
    let (a, b) = (a.f32(op.name(), "a")?, b.f32(op.name(), "b")?);
    let mut out = dev.alloc_f32(n)?;
    let o = out.f32_mut(op.name(), "out")?;
    let (n64, nb64) = (n as u64, nb.max(1) as u64);
    match op {
        BinaryOp::Add => launch!(dev, "binary", "add", grid(n); a, b, o, &n64, &nb64),
        BinaryOp::Mul => launch!(dev, "binary", "mul", grid(n); a, b, o, &n64, &nb64),
    }
    Ok(out)
}

/// acc += x in place.
pub fn add_assign(
    dev: &Arc<CudaDevice>,
    acc: &mut CudaBuffer,
    x: &CudaBuffer,
    n: usize,
) -> Result<()> {
    let x = x.f32("add_assign", "x")?;
    let acc = acc.f32_mut("add_assign", "acc")?;
    let n64 = n as u64;
    launch!(dev, "binary", "add_assign", grid(n); acc, x, &n64);
    Ok(())
}

pub fn unary(dev: &Arc<CudaDevice>, op: UnaryOp, x: &CudaBuffer, n: usize) -> Result<CudaBuffer> {
    let x = x.f32(op.name(), "x")?;
    let mut out = dev.alloc_f32(n)?;
    let o = out.f32_mut(op.name(), "out")?;
    let n64 = n as u64;
    match op {
        UnaryOp::Silu => launch!(dev, "unary", "silu", grid(n); x, o, &n64),
        UnaryOp::Softplus => launch!(dev, "unary", "softplus", grid(n); x, o, &n64),
        UnaryOp::Exp => launch!(dev, "unary", "exp_forward", grid(n); x, o, &n64),
        UnaryOp::Scale(c) => launch!(dev, "unary", "scale", grid(n); x, o, &n64, &c),
    }
    Ok(out)
}

/// The input's gradient of silu or softplus from x and the output's gradient g.
pub fn unary_backward(
    dev: &Arc<CudaDevice>,
    op: UnaryOp,
    x: &CudaBuffer,
    g: &CudaBuffer,
    n: usize,
) -> Result<CudaBuffer> {
    const OP: &str = "unary_backward";
    let (x, g) = (x.f32(OP, "x")?, g.f32(OP, "g")?);
    let mut out = dev.alloc_f32(n)?;
    let o = out.f32_mut(OP, "out")?;
    let n64 = n as u64;
    match op {
        UnaryOp::Silu => launch!(dev, "unary", "silu_backward", grid(n); x, g, o, &n64),
        UnaryOp::Softplus => launch!(dev, "unary", "softplus_backward", grid(n); x, g, o, &n64),
        UnaryOp::Exp | UnaryOp::Scale(_) => {
            return Err(Error::InvalidArgument {
                op: OP,
                detail: format!(
                    "{} has no backward kernel (it is built from other ops)",
                    op.name()
                ),
            });
        }
    }
    Ok(out)
}
