//! The fused AdamW update (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"), in the
//! form of PyTorch's `torch.optim.AdamW` (`_single_tensor_adamw`): one kernel reads param, grad,
//! m and v and writes the new param, m and v. Functional: the inputs are left untouched and three
//! new tensors come back. No autograd: call it under `no_grad`; its outputs never carry a tape
//! node, so mark the new param `as_variable` again before the next forward.

use crate::backend::{Device, cpu, wgpu};
use crate::error::{Error, Result, shape_err};
use crate::tensor::{DType, Tensor, same_device};

/// The hyper-parameters of one update.
#[derive(Clone, Copy, Debug)]
pub struct AdamWStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based, for bias correction
    pub step: u32,
    /// multiplies the gradient first (clipping coefficient, or 1/loss_scale)
    pub grad_scale: f32,
}

/// The step-dependent factors of an update, computed once on the host in f64 (PyTorch computes
/// them from Python floats) and rounded to f32, so both backends apply the very same constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWFactors {
    /// 1 - lr * weight_decay: the decoupled decay multiplies the param.
    pub decay: f32,
    /// lr / (1 - beta1^step).
    pub step_size: f32,
    /// sqrt(1 - beta2^step).
    pub bias_correction2_sqrt: f32,
}

impl AdamWStep {
    pub fn factors(&self) -> AdamWFactors {
        let t = self.step as i32;
        let bias_correction1 = 1.0 - (self.beta1 as f64).powi(t);
        let bias_correction2 = 1.0 - (self.beta2 as f64).powi(t);
        AdamWFactors {
            decay: (1.0 - self.lr as f64 * self.weight_decay as f64) as f32,
            step_size: (self.lr as f64 / bias_correction1) as f32,
            bias_correction2_sqrt: bias_correction2.sqrt() as f32,
        }
    }
}

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
    Ok(match same_device(op, &[param, grad, m, v])? {
        Device::Cpu => {
            let (p2, m2, v2) = cpu::adamw::adamw_step(
                param.cpu_f32(op, "param")?,
                grad.cpu_f32(op, "grad")?,
                m.cpu_f32(op, "m")?,
                v.cpu_f32(op, "v")?,
                s,
                &f,
            );
            AdamWState {
                param: Tensor::from_cpu(p2, shape),
                m: Tensor::from_cpu(m2, shape),
                v: Tensor::from_cpu(v2, shape),
            }
        }
        Device::Wgpu(ctx) => {
            let inputs = [
                param.gpu(op, "param")?,
                grad.gpu(op, "grad")?,
                m.gpu(op, "m")?,
                v.gpu(op, "v")?,
            ];
            let [p2, m2, v2] = wgpu::adamw::adamw_step(&ctx, inputs, param.elem_count(), s, &f)?;
            AdamWState {
                param: Tensor::from_gpu(p2, shape, DType::F32),
                m: Tensor::from_gpu(m2, shape, DType::F32),
                v: Tensor::from_gpu(v2, shape, DType::F32),
            }
        }
    })
}
