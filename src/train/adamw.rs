//! AdamW over a list of parameters, on the fused `ops::adamw_step` kernel. Tensors are immutable,
//! so a step replaces each parameter handle with its updated tensor (a fresh variable); the
//! moments live here, one pair per parameter, in the order the parameters are passed.

use crate::autograd::{Gradients, no_grad};
use crate::error::{Error, Result};
use crate::ops::{AdamWStep, adamw_step};
use crate::tensor::Tensor;

/// torch.optim.AdamW's hyper-parameters (decoupled weight decay).
#[derive(Clone, Copy, Debug)]
pub struct AdamWConfig {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

pub struct AdamW {
    pub config: AdamWConfig,
    moments: Vec<(Tensor, Tensor)>,
    step: u32,
    /// Per parameter (in step order): whether weight decay applies; empty = all decay.
    decay_mask: Vec<bool>,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW {
            config,
            moments: Vec::new(),
            step: 0,
            decay_mask: Vec::new(),
        }
    }

    /// Weight decay only where `mask[k]` is true, for the k-th parameter passed to `step`
    /// (LM practice: matrices and embeddings decay; norms, biases, A_log and D do not).
    pub fn with_decay_mask(mut self, mask: Vec<bool>) -> Self {
        self.decay_mask = mask;
        self
    }

    /// The first and second moments, one pair per parameter (empty before the first step).
    pub fn moments(&self) -> &[(Tensor, Tensor)] {
        &self.moments
    }

    /// Puts back a saved optimizer state (`steps` taken and the moments), to resume a run exactly.
    pub fn restore(&mut self, steps: u32, moments: Vec<(Tensor, Tensor)>) {
        self.step = steps;
        self.moments = moments;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.step
    }

    /// One update of every parameter from its gradient, scaled by `grad_scale` first (a clipping
    /// coefficient). A parameter without a gradient is an error: it usually means a graph bug.
    pub fn step(
        &mut self,
        params: Vec<&mut Tensor>,
        grads: &Gradients,
        lr: f32,
        grad_scale: f32,
    ) -> Result<()> {
        let _off = no_grad();
        if self.moments.is_empty() {
            for p in &params {
                let zeros = Tensor::zeros(p.shape(), &p.device())?;
                self.moments.push((zeros.clone(), zeros));
            }
        }
        if self.moments.len() != params.len() {
            return Err(Error::InvalidArgument {
                op: "AdamW::step",
                detail: format!(
                    "{} parameters given, {} tracked",
                    params.len(),
                    self.moments.len()
                ),
            });
        }
        self.step += 1;
        let c = self.config;
        let decayed = AdamWStep {
            lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            step: self.step,
            grad_scale,
        };
        let plain = AdamWStep {
            weight_decay: 0.0,
            ..decayed
        };
        for (k, p) in params.into_iter().enumerate() {
            let decays = self.decay_mask.get(k).copied().unwrap_or(true);
            let s = if decays { &decayed } else { &plain };
            let g = grads.get(p).ok_or_else(|| Error::InvalidArgument {
                op: "AdamW::step",
                detail: format!("parameter {k} of shape {:?} has no gradient", p.shape()),
            })?;
            let (m, v) = &self.moments[k];
            let next = adamw_step(p, g, m, v, s)?;
            *p = next.param.as_variable();
            self.moments[k] = (next.m, next.v);
        }
        Ok(())
    }
}
