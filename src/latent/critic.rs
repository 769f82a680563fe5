//! The value critic: one small head per layer on that layer's standardised latent,
//!
//! ```text
//! v_i = w2_i . silu(W1_i s_i + b1_i) + b2_i        in standard units of the value target
//! ```
//!
//! so every layer says how good the state is from what it holds, and the heads' agreement says
//! how much to trust them (`confidence`). The target (`value_target`) is standardised with the
//! training set's mean and spread, kept beside the heads, so a head's output reads back in nats.

use crate::Device;
use crate::error::{Result, shape_err};
use crate::ops;
use crate::rng::Rng;
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CriticConfig {
    pub layers: usize,
    pub d_model: usize,
    /// Hidden width of each head.
    pub hidden: usize,
}

/// One head's weights (saved as `crsm.critic.{i}.*`).
#[derive(Clone)]
pub struct ValueHead {
    /// [hidden, D], [hidden]
    pub w1: Tensor,
    pub b1: Tensor,
    /// [1, hidden], [1]
    pub w2: Tensor,
    pub b2: Tensor,
}

#[derive(Clone)]
pub struct Critic {
    pub config: CriticConfig,
    pub heads: Vec<ValueHead>,
}

impl Critic {
    /// Heads with PyTorch's Linear init (uniform +-1/sqrt(fan_in)).
    pub fn init(config: CriticConfig, seed: u64, device: &Device) -> Result<Self> {
        let CriticConfig {
            layers,
            d_model: d,
            hidden: h,
        } = config;
        if layers == 0 || d == 0 || h == 0 {
            return shape_err("Critic::init", format!("{config:?}"));
        }
        let mut rng = Rng::new(seed);
        let var = |data: Vec<f32>, shape: &[usize]| -> Result<Tensor> {
            Ok(Tensor::from_f32(data, shape, device)?.as_variable())
        };
        let (b1, b2) = (1.0 / (d as f32).sqrt(), 1.0 / (h as f32).sqrt());
        let heads = (0..layers)
            .map(|_| {
                Ok(ValueHead {
                    w1: var(rng.uniform_vec(h * d, b1), &[h, d])?,
                    b1: var(rng.uniform_vec(h, b1), &[h])?,
                    w2: var(rng.uniform_vec(h, b2), &[1, h])?,
                    b2: var(vec![0.0], &[1])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Critic { config, heads })
    }

    /// Names as saved under `crsm.critic.` (`{layer}.w1`, ...), in `parameters_mut` order.
    pub fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        self.heads
            .iter()
            .enumerate()
            .flat_map(|(i, h)| {
                [
                    (format!("{i}.w1"), &h.w1),
                    (format!("{i}.b1"), &h.b1),
                    (format!("{i}.w2"), &h.w2),
                    (format!("{i}.b2"), &h.b2),
                ]
            })
            .collect()
    }

    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        self.heads
            .iter_mut()
            .flat_map(|h| [&mut h.w1, &mut h.b1, &mut h.w2, &mut h.b2])
            .collect()
    }

    pub fn parameter_count(&self) -> usize {
        self.heads
            .iter()
            .map(|h| h.w1.elem_count() + h.b1.elem_count() + h.w2.elem_count() + h.b2.elem_count())
            .sum()
    }

    /// s: [B, layers, D] standardised latents -> [B, layers] values (standard units).
    pub fn values(&self, s: &Tensor) -> Result<Tensor> {
        let CriticConfig {
            layers, d_model: d, ..
        } = self.config;
        let b = s.dim(0);
        if s.shape() != [b, layers, d] {
            return shape_err(
                "Critic::values",
                format!("s {:?} must be [B, {layers}, {d}]", s.shape()),
            );
        }
        let per_layer = self
            .heads
            .iter()
            .enumerate()
            .map(|(i, head)| {
                let si = ops::narrow(s, 1, i, 1)?.reshape(&[b, d])?;
                let hidden = ops::silu(&ops::linear(&si, &head.w1, Some(&head.b1))?)?;
                ops::linear(&hidden, &head.w2, Some(&head.b2))
            })
            .collect::<Result<Vec<_>>>()?;
        ops::concat(&per_layer.iter().collect::<Vec<_>>(), 1)
    }

    /// Mean over layers and rows of (v_i - target)^2; targets [B] in standard units.
    pub fn loss(&self, s: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let v = self.values(s)?;
        let (b, layers) = (v.dim(0), v.dim(1));
        if targets.shape() != [b] {
            return shape_err(
                "Critic::loss",
                format!("targets {:?} must be [{b}]", targets.shape()),
            );
        }
        let t = ops::concat(&vec![&targets.reshape(&[b, 1])?; layers], 1)?;
        let e = ops::sub(&v, &t)?;
        ops::mean(&ops::mul(&e, &e)?)
    }
}

/// Per-layer confidence in (0, 1] from one row of head values (standard units) and each head's
/// held-out RMSE: `1 / (1 + rmse_i^2 + (v_i - mean_j v_j)^2)`. A head that was accurate on
/// held-out data and agrees with the others is trusted; error or disagreement of one standard
/// deviation halves the trust. This is what the injection gate reads.
pub fn confidence(values: &[f32], held_out_rmse: &[f32]) -> Vec<f32> {
    let mean = values.iter().sum::<f32>() / values.len().max(1) as f32;
    values
        .iter()
        .zip(held_out_rmse)
        .map(|(v, e)| 1.0 / (1.0 + e * e + (v - mean) * (v - mean)))
        .collect()
}
