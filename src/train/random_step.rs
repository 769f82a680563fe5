//! One training micro-step on random tokens (forward, backward, AdamW): what `crsm-train bench
//! train` times and `crsm-train memtest` measures. Not the trainer's step (that one reads real
//! data, accumulates and clips); this is the shape of its work, on inputs that need no dataset.

use crate::backend::Device;
use crate::error::Result;
use crate::model::Backbone;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::train::{AdamW, causal_lm_loss};

/// Inputs and targets U32 [batch, seq], uniform over the vocabulary, from a seed.
pub fn random_tokens(
    vocab: usize,
    batch: usize,
    seq: usize,
    seed: u64,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let mut rng = Rng::new(seed);
    let mut ids = || -> Vec<u32> {
        (0..batch * seq)
            .map(|_| (rng.next_u64() % vocab as u64) as u32)
            .collect()
    };
    Ok((
        Tensor::from_u32(ids(), &[batch, seq], device)?,
        Tensor::from_u32(ids(), &[batch, seq], device)?,
    ))
}

/// Where a step is when it calls back (memtest reads the memory counters there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepPhase {
    /// The loss is computed; the tape holds the activations.
    Forward,
    /// The gradients are computed and the tape is dropped.
    Backward,
    /// Every parameter is updated; the gradients are still held.
    Optimizer,
}

/// Loss, backward, AdamW at `lr` (no clipping); returns the loss. `after` is called at the end
/// of each phase. The tape is dropped before the optimizer runs, as a trainer would.
pub fn training_step(
    model: &mut Backbone,
    optimizer: &mut AdamW,
    inputs: &Tensor,
    targets: &Tensor,
    lr: f32,
    mut after: impl FnMut(StepPhase),
) -> Result<f32> {
    let loss = causal_lm_loss(model, inputs, targets)?;
    let value = loss.scalar()?;
    after(StepPhase::Forward);
    let grads = loss.backward()?;
    drop(loss);
    after(StepPhase::Backward);
    optimizer.step(model.parameters_mut(), &grads, lr, 1.0)?;
    after(StepPhase::Optimizer);
    Ok(value)
}
