//! The depth adapter that precedes each pass of recursive depth (`crsm.adapters.{p}`).
//!
//! Choice: a per-channel affine map of the residual stream, `x * scale + bias` with scale and bias
//! [D], initialised to the identity (scale 1, bias 0). Why this and not a low-rank residual
//! `x + U V^T x`:
//! - it tells the shared blocks which pass they are in at the cost of 2D parameters and two
//!   elementwise kernels per pass; each block opens with an RMSNorm whose per-channel gain sees
//!   the rescaled channels, and the bias shifts the stream in a pass-specific direction the norm
//!   does not cancel;
//! - it is exactly the identity at init, so a deeper model starts as the same blocks run again
//!   and gradient shapes the difference; a low-rank map must start with U = 0 for the same
//!   property and adds two [tokens x D x r] matmuls per pass;
//! - it works unchanged on a single decode step ([B, 1, D]), which the planner runs most.

use crate::backend::Device;
use crate::error::Result;
use crate::ops;
use crate::tensor::Tensor;

#[derive(Clone)]
pub struct DepthAdapter {
    /// [D], `crsm.adapters.{p}.scale`.
    pub scale: Tensor,
    /// [D], `crsm.adapters.{p}.bias`.
    pub bias: Tensor,
}

impl DepthAdapter {
    /// The identity map for width `d`; both tensors are variables.
    pub fn identity(d: usize, device: &Device) -> Result<Self> {
        Ok(DepthAdapter {
            scale: Tensor::full(1.0, &[d], device)?.as_variable(),
            bias: Tensor::zeros(&[d], device)?.as_variable(),
        })
    }

    /// x: [..., D] -> x * scale + bias.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::add(&ops::mul(x, &self.scale)?, &self.bias)
    }
}
