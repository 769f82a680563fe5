//! Elementwise unary ops: `silu`, `softplus`, `exp`, `scale`.

use crate::backend::{Device, cpu, wgpu};
use crate::error::Result;
use crate::ops::mul;
use crate::tensor::{DType, Tensor, same_device};

fn forward(op: &'static str, entry: &'static str, x: &Tensor, c: f32) -> Result<Tensor> {
    x.expect_dtype(op, "x", DType::F32)?;
    Ok(match x.device() {
        Device::Cpu => {
            let v = x.cpu_f32(op, "x")?;
            let out = match op {
                "silu" => cpu::unary::silu(v),
                "softplus" => cpu::unary::softplus(v),
                "exp" => cpu::unary::exp(v),
                _ => cpu::unary::scale(v, c),
            };
            Tensor::from_cpu(out, x.shape())
        }
        Device::Wgpu(ctx) => Tensor::from_gpu(
            wgpu::unary::unary(&ctx, entry, x.gpu(op, "x")?, x.elem_count(), c)?,
            x.shape(),
            DType::F32,
        ),
    })
}

/// The input's gradient for silu or softplus, from the input `x` and the output's gradient `g`.
fn backward(op: &'static str, x: &Tensor, g: &Tensor) -> Result<Tensor> {
    Ok(match same_device(op, &[x, g])? {
        Device::Cpu => {
            let (v, d) = (x.cpu_f32(op, "x")?, g.cpu_f32(op, "g")?);
            let out = if op == "silu_backward" {
                cpu::unary::silu_backward(v, d)
            } else {
                cpu::unary::softplus_backward(v, d)
            };
            Tensor::from_cpu(out, x.shape())
        }
        Device::Wgpu(ctx) => {
            let out = wgpu::unary::unary_backward(
                &ctx,
                op,
                x.gpu(op, "x")?,
                g.gpu(op, "g")?,
                x.elem_count(),
            )?;
            Tensor::from_gpu(out, x.shape(), DType::F32)
        }
    })
}

/// silu(x) = x * sigmoid(x); d/dx = s + x s (1 - s).
pub fn silu(x: &Tensor) -> Result<Tensor> {
    let x2 = x.clone();
    Ok(
        forward("silu", "silu", x, 0.0)?.with_grad_fn("silu", &[x], move |g| {
            Ok(vec![Some(backward("silu_backward", &x2, g)?)])
        }),
    )
}

/// softplus(x) = log(1 + e^x) (linear past 20); d/dx = sigmoid(x).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let x2 = x.clone();
    Ok(
        forward("softplus", "softplus", x, 0.0)?.with_grad_fn("softplus", &[x], move |g| {
            Ok(vec![Some(backward("softplus_backward", &x2, g)?)])
        }),
    )
}

/// e^x; d/dx = e^x (recomputed in backward rather than holding the output, which would be a cycle).
pub fn exp(x: &Tensor) -> Result<Tensor> {
    let x2 = x.clone();
    Ok(forward("exp", "exp_forward", x, 0.0)?
        .with_grad_fn("exp", &[x], move |g| Ok(vec![Some(mul(g, &exp(&x2)?)?)])))
}

/// c * x; d/dx = c.
pub fn scale(x: &Tensor, c: f32) -> Result<Tensor> {
    Ok(forward("scale", "scale", x, c)?
        .with_grad_fn("scale", &[x], move |g| Ok(vec![Some(scale(g, c)?)])))
}
