//! The injection gates: how much of the planner's target latent each layer takes, from the
//! critic's confidence in that layer (`critic::confidence`),
//!
//! ```text
//! alpha_i = injection_rate * sigmoid(weight_i * confidence_i + bias_i)      per layer i
//! ```
//!
//! saved as `crsm.gates.weight` and `crsm.gates.bias`, [layers] each. They start at weight 8 and
//! bias -4, so an uncertain critic (confidence 0) lets through sigmoid(-4) = 0.018 of the rate
//! and a confident one (confidence 1) sigmoid(4) = 0.982 of it: injection is nearly off until
//! the critic trusts a layer. The rate itself is the planner's setting, not a weight.

use crate::Device;
use crate::error::{Result, shape_err};
use crate::tensor::Tensor;

/// The gates' starting slope and offset (see the module doc).
pub const INIT_WEIGHT: f32 = 8.0;
pub const INIT_BIAS: f32 = -4.0;

#[derive(Clone)]
pub struct Gates {
    /// [layers] each.
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Gates {
    pub fn init(layers: usize, device: &Device) -> Result<Self> {
        if layers == 0 {
            return shape_err("Gates::init", "layers 0");
        }
        let var = |v: f32| -> Result<Tensor> {
            Ok(Tensor::from_f32(vec![v; layers], &[layers], device)?.as_variable())
        };
        Ok(Gates {
            weight: var(INIT_WEIGHT)?,
            bias: var(INIT_BIAS)?,
        })
    }

    pub fn layers(&self) -> usize {
        self.weight.dim(0)
    }

    /// Names as saved under `crsm.gates.`.
    pub fn named_parameters(&self) -> Vec<(&'static str, &Tensor)> {
        vec![("weight", &self.weight), ("bias", &self.bias)]
    }

    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.weight, &mut self.bias]
    }

    /// Each layer's injection fraction for one row of per-layer confidences in [0, 1].
    pub fn alphas(&self, confidence: &[f32], injection_rate: f32) -> Result<Vec<f32>> {
        let layers = self.layers();
        if confidence.len() != layers {
            return shape_err(
                "Gates::alphas",
                format!("{} confidences for {layers} layers", confidence.len()),
            );
        }
        let (w, b) = (self.weight.to_vec_f32()?, self.bias.to_vec_f32()?);
        Ok(confidence
            .iter()
            .zip(w.iter().zip(&b))
            .map(|(c, (w, b))| injection_rate / (1.0 + (-(w * c + b)).exp()))
            .collect())
    }
}
