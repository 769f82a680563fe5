//! The recurrent state of a running sequence, kept apart from the weights (as candle's
//! `models/mamba.rs` does): what one decode step reads and writes, per block application.
//!
//! With recursive depth the physical blocks run several times per token; each application is a
//! distinct layer of the unrolled stack and keeps its own state, so `layers` holds
//! `num_hidden_layers * crsm_recurrent_depth` entries, pass-major (pass 0's layers first).
//!
//! The conv state holds K-1 inputs where HF's cache holds K: HF rolls its window left before it
//! appends the new input (`causal_conv1d_update` in modeling_mamba.py), so its oldest column is
//! never read again; ours is HF's `conv_states[:, :, 1:]`, transposed to channels last.

use crate::error::{Result, shape_err};
use crate::tensor::Tensor;

/// The state of one block application.
#[derive(Clone, Debug)]
pub struct LayerState {
    /// [B, K-1, E]: the last K-1 pre-conv inputs (xb, before conv, bias and SiLU), oldest first.
    pub conv: Tensor,
    /// [B, E, N]: the SSM state h after the last token.
    pub ssm: Tensor,
}

/// Every layer's state plus how many tokens it has seen.
#[derive(Clone, Debug)]
pub struct State {
    pub layers: Vec<LayerState>,
    /// Tokens consumed since the state was zero.
    pub position: usize,
}

impl State {
    /// Zero states for `layers` block applications of a batch (the state of an empty sequence).
    pub fn zeros(
        layers: usize,
        batch: usize,
        conv_kernel: usize,
        d_inner: usize,
        d_state: usize,
        device: &crate::Device,
    ) -> Result<Self> {
        if conv_kernel < 2 || batch == 0 {
            return shape_err(
                "State::zeros",
                format!(
                    "needs batch >= 1 and conv width K >= 2, got batch {batch}, K {conv_kernel}"
                ),
            );
        }
        let layers = (0..layers)
            .map(|_| {
                Ok(LayerState {
                    conv: Tensor::zeros(&[batch, conv_kernel - 1, d_inner], device)?,
                    ssm: Tensor::zeros(&[batch, d_inner, d_state], device)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(State {
            layers,
            position: 0,
        })
    }

    /// Batch rows this state holds (0 for a state with no layers).
    pub fn batch(&self) -> usize {
        self.layers.first().map_or(0, |l| l.ssm.dim(0))
    }

    /// A device-side copy. Tensors are immutable, so sharing handles would be safe today; a copy
    /// keeps the snapshot independent of whatever a later in-place update (injection, a fused
    /// step kernel) might do to the live state.
    pub fn snapshot(&self) -> Result<State> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(LayerState {
                    conv: l.conv.deep_clone()?,
                    ssm: l.ssm.deep_clone()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(State {
            layers,
            position: self.position,
        })
    }

    /// Makes this state a copy of `from` (a snapshot of the same model and batch size).
    pub fn restore(&mut self, from: &State) -> Result<()> {
        let mismatch =
            self.layers.len() != from.layers.len()
                || self.layers.iter().zip(&from.layers).any(|(a, b)| {
                    a.conv.shape() != b.conv.shape() || a.ssm.shape() != b.ssm.shape()
                });
        if mismatch {
            let shapes = |s: &State| {
                s.layers
                    .first()
                    .map(|l| (l.conv.shape().to_vec(), l.ssm.shape().to_vec()))
            };
            return shape_err(
                "State::restore",
                format!(
                    "snapshot has {} layers (first conv/ssm {:?}), this state {} (first {:?})",
                    from.layers.len(),
                    shapes(from),
                    self.layers.len(),
                    shapes(self)
                ),
            );
        }
        *self = from.snapshot()?;
        Ok(())
    }
}
