//! The training objectives: next-token cross-entropy over a batch, with positions that carry no
//! loss (SFT's prompt tokens, padding) marked by `IGNORE` in the targets.

use crate::data::IGNORE;
use crate::error::Result;
use crate::model::Backbone;
use crate::ops;
use crate::tensor::Tensor;

/// Mean next-token cross-entropy (nats per predicted token) of `model` reading `inputs` U32 [B, L]
/// and predicting `targets` U32 [B, L] (usually `inputs` shifted by one; `IGNORE` where no loss).
pub fn causal_lm_loss(model: &Backbone, inputs: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let logits = model.forward(inputs)?;
    let (b, l, v) = (logits.dim(0), logits.dim(1), logits.dim(2));
    let logits = logits.reshape(&[b * l, v])?;
    let targets = targets.reshape(&[b * l])?;
    ops::cross_entropy(&logits, &targets, Some(IGNORE))
}
