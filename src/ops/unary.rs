//! Elementwise unary ops: `silu`, `softplus`, `exp`, `scale`.

use crate::backend::UnaryOp;
use crate::error::Result;
use crate::ops::mul;
use crate::tensor::{DType, Tensor, same_device};

fn forward(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    x.expect_dtype(op.name(), "x", DType::F32)?;
    let out = x
        .device()
        .backend()
        .unary(op, x.storage(), x.elem_count())?;
    Ok(Tensor::from_storage(out, x.shape(), DType::F32))
}

/// The input's gradient for silu or softplus, from the input `x` and the output's gradient `g`.
fn backward(op: UnaryOp, x: &Tensor, g: &Tensor) -> Result<Tensor> {
    let device = same_device("unary_backward", &[x, g])?;
    let dx = device
        .backend()
        .unary_backward(op, x.storage(), g.storage(), x.elem_count())?;
    Ok(Tensor::from_storage(dx, x.shape(), DType::F32))
}

/// silu(x) = x * sigmoid(x); d/dx = s + x s (1 - s).
pub fn silu(x: &Tensor) -> Result<Tensor> {
    let x2 = x.clone();
    Ok(
        forward(UnaryOp::Silu, x)?.with_grad_fn("silu", &[x], move |g| {
            Ok(vec![Some(backward(UnaryOp::Silu, &x2, g)?)])
        }),
    )
}

/// softplus(x) = log(1 + e^x) (linear past 20); d/dx = sigmoid(x).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let x2 = x.clone();
    Ok(
        forward(UnaryOp::Softplus, x)?.with_grad_fn("softplus", &[x], move |g| {
            Ok(vec![Some(backward(UnaryOp::Softplus, &x2, g)?)])
        }),
    )
}

/// e^x; d/dx = e^x (recomputed in backward rather than holding the output, which would be a cycle).
pub fn exp(x: &Tensor) -> Result<Tensor> {
    let x2 = x.clone();
    Ok(forward(UnaryOp::Exp, x)?
        .with_grad_fn("exp", &[x], move |g| Ok(vec![Some(mul(g, &exp(&x2)?)?)])))
}

/// c * x; d/dx = c.
pub fn scale(x: &Tensor, c: f32) -> Result<Tensor> {
    Ok(forward(UnaryOp::Scale(c), x)?
        .with_grad_fn("scale", &[x], move |g| Ok(vec![Some(scale(g, c)?)])))
}
