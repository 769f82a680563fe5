//! Latent traces: the frozen backbone's latents at every position of a set of token windows. The
//! dynamics model learns from them, and the fit report is computed on held-out ones.

use crate::autograd::no_grad;
use crate::error::{Result, shape_err};
use crate::model::Backbone;
use crate::tensor::Tensor;

/// `windows` token windows of `len` tokens each, and the latents after each token.
#[derive(Clone, Debug, PartialEq)]
pub struct LatentTrace {
    pub windows: usize,
    pub len: usize,
    /// Block applications (the model's layers x recurrent depth).
    pub layers: usize,
    pub d_model: usize,
    /// [windows, len]
    pub tokens: Vec<u32>,
    /// [windows, len, layers, d_model]: `z[w, t, i]` is layer i's residual output after reading
    /// `tokens[w, ..=t]`.
    pub z: Vec<f32>,
}

impl LatentTrace {
    /// Runs `model` (no gradients) over `tokens` [windows, len], `batch` windows at a time.
    pub fn collect(
        model: &Backbone,
        tokens: &[u32],
        len: usize,
        batch: usize,
    ) -> Result<LatentTrace> {
        if len == 0 || batch == 0 || !tokens.len().is_multiple_of(len) {
            return shape_err(
                "LatentTrace::collect",
                format!(
                    "{} tokens do not split into windows of {len} (batch {batch})",
                    tokens.len()
                ),
            );
        }
        let _off = no_grad();
        let windows = tokens.len() / len;
        let (layers, d) = (model.config.applications(), model.config.hidden_size);
        let mut z = vec![0f32; windows * len * layers * d];
        let device = model.device();
        for first in (0..windows).step_by(batch) {
            let b = batch.min(windows - first);
            let ids = tokens[first * len..(first + b) * len].to_vec();
            let ids = Tensor::from_u32(ids, &[b, len], &device)?;
            for (i, r) in model.residuals(&ids)?.iter().enumerate() {
                let r = r.to_vec_f32()?;
                for (row, src) in r.chunks_exact(d).enumerate() {
                    let at = ((first * len + row) * layers + i) * d;
                    z[at..at + d].copy_from_slice(src);
                }
            }
        }
        Ok(LatentTrace {
            windows,
            len,
            layers,
            d_model: d,
            tokens: tokens.to_vec(),
            z,
        })
    }

    /// The latents of every layer at (window, position): [layers * d_model].
    pub fn at(&self, window: usize, t: usize) -> &[f32] {
        let n = self.layers * self.d_model;
        &self.z[(window * self.len + t) * n..][..n]
    }

    pub fn token(&self, window: usize, t: usize) -> u32 {
        self.tokens[window * self.len + t]
    }
}
