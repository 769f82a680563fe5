//! The fused AdamW update (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"), in the
//! form of PyTorch's `torch.optim.AdamW` (`_single_tensor_adamw`): one kernel reads param, grad,
//! m and v and writes the new param, m and v. Functional: the inputs are left untouched and three
//! new tensors come back. No autograd: call it under `no_grad`; its outputs never carry a tape
//! node, so mark the new param `as_variable` again before the next forward.

pub use crate::backend::{AdamWFactors, AdamWStep};
use crate::error::{Error, Result, shape_err};
use crate::tensor::{DType, Tensor, same_device};

/// The param and the moments after one update.
pub struct AdamWState {
    pub param: Tensor,
    pub m: Tensor,
    pub v: Tensor,
}

/// One AdamW update of `param` from `grad` and the moments `m`, `v` (all the same shape, f32):
///
/// ```text
/// g <- grad_scale * grad
/// p <- p * (1 - lr * wd)                       (decoupled weight decay)
/// m <- beta1 m + (1 - beta1) g
/// v <- beta2 v + (1 - beta2) g^2
/// p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// PyTorch writes the m update as `m.lerp_(g, 1 - beta1)`; the two agree up to rounding.
pub fn adamw_step(
    param: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    s: &AdamWStep,
) -> Result<AdamWState> {
    let op = "adamw_step";
    for (t, name) in [(param, "param"), (grad, "grad"), (m, "m"), (v, "v")] {
        t.expect_dtype(op, name, DType::F32)?;
    }
    let shape = param.shape();
    if grad.shape() != shape || m.shape() != shape || v.shape() != shape {
        return shape_err(
            op,
            format!(
                "param {shape:?}, grad {:?}, m {:?} and v {:?} must have one shape",
                grad.shape(),
                m.shape(),
                v.shape()
            ),
        );
    }
    if s.step == 0 {
        return Err(Error::InvalidArgument {
            op,
            detail: format!(
                "step is 1-based (bias correction divides by 1 - beta1^step), got 0 for param {shape:?}"
            ),
        });
    }
    let f = s.factors();
    let device = same_device(op, &[param, grad, m, v])?;
    let inputs = [param.storage(), grad.storage(), m.storage(), v.storage()];
    let [p2, m2, v2] = device
        .backend()
        .adamw_step(inputs, param.elem_count(), s, &f)?;
    Ok(AdamWState {
        param: Tensor::from_storage(p2, shape, DType::F32),
        m: Tensor::from_storage(m2, shape, DType::F32),
        v: Tensor::from_storage(v2, shape, DType::F32),
    })
}
