//! `rms_norm`: RMSNorm over the last dimension, exactly as HF transformers' `MambaRMSNorm`
//! (`modeling_mamba.py`): y = x * rsqrt(mean(x^2, -1) + eps) * weight, computed in f32.

use crate::error::{Error, Result, shape_err};
use crate::tensor::{DType, Tensor, same_device};

const OP: &str = "rms_norm";

/// The size d of the normalised (last) dimension, after checking x: [..., d] against weight: [d].
fn check(x: &Tensor, weight: &Tensor, eps: f32) -> Result<usize> {
    x.expect_dtype(OP, "x", DType::F32)?;
    weight.expect_dtype(OP, "weight", DType::F32)?;
    let d = match x.shape().last() {
        Some(&d) if d > 0 => d,
        _ => {
            return shape_err(
                OP,
                format!(
                    "x {:?} needs a non-empty last dimension to normalise",
                    x.shape()
                ),
            );
        }
    };
    if weight.shape() != [d] {
        return shape_err(
            OP,
            format!(
                "weight {:?} must be [{d}], the last dimension of x {:?}",
                weight.shape(),
                x.shape()
            ),
        );
    }
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: format!("eps must be finite and >= 0, got {eps}"),
        });
    }
    Ok(d)
}

/// RMSNorm of x: [..., D] with gain weight: [D]. Gradients for both x and weight (see
/// `cpu::rmsnorm::rms_norm_backward` for the derivative).
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
    let d = check(x, weight, eps)?;
    let rows = x.elem_count() / d;
    let device = same_device(OP, &[x, weight])?;
    let out = device
        .backend()
        .rms_norm(x.storage(), weight.storage(), rows, d, eps)?;
    let out = Tensor::from_storage(out, x.shape(), DType::F32);
    let (x2, w2) = (x.clone(), weight.clone());
    Ok(out.with_grad_fn(OP, &[x, weight], move |g| {
        // One pass yields both gradients; the one not needed is dropped.
        let (dx, dw) = rms_norm_backward(&x2, &w2, g, eps)?;
        Ok(vec![
            x2.requires_grad().then_some(dx),
            w2.requires_grad().then_some(dw),
        ])
    }))
}

/// (dx, dweight) from the output's gradient g (same shape as x).
fn rms_norm_backward(
    x: &Tensor,
    weight: &Tensor,
    g: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor)> {
    const BW: &str = "rms_norm_backward";
    let d = weight.elem_count();
    let rows = x.elem_count() / d;
    let device = same_device(BW, &[x, weight, g])?;
    let (dx, dw) = device.backend().rms_norm_backward(
        x.storage(),
        weight.storage(),
        g.storage(),
        rows,
        d,
        eps,
    )?;
    Ok((
        Tensor::from_storage(dx, x.shape(), DType::F32),
        Tensor::from_storage(dw, weight.shape(), DType::F32),
    ))
}
