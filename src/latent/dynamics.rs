//! The latent dynamics model: from every layer's latent after token t and the token read next
//! (t+1, the planner's action), every layer's latent after it, in standard units (`Standardizer`).
//!
//! ```text
//! x_i     = e(token) + layer_i              e: the backbone's embedding, scaled to unit rms (frozen)
//! g_i     = GRUCell(x_i, s_i)               one cell shared by all layers (PyTorch's GRUCell)
//! s'_i    = s_i + gain_i * (W_out g_i) + b_i residual form; W_out starts at zero, so an untrained
//!                                           model is exactly the identity baseline s' = s
//! ```
//!
//! One cell for all layers, told apart by a learned layer vector: per-layer cells would cost
//! 7 D^2 parameters a layer (85M at mamba-130m's 24 x 768, as large as the backbone); the shared
//! cell costs 7 D^2 + 6 D + 3 layers D once (4.2M there, 3.2% of the backbone). The per-layer
//! output gain and bias (2 D a layer) measured a little better than one shared bias. All layers
//! of all rows step as one batch of rows, so a wave of planner leaves is three matmuls.

use crate::Device;
use crate::error::{Result, shape_err};
use crate::ops;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// The sizes of a dynamics model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DynamicsConfig {
    pub layers: usize,
    pub d_model: usize,
}

/// The weights (names as saved under `crsm.dynamics.`).
#[derive(Clone)]
pub struct Dynamics {
    pub config: DynamicsConfig,
    /// [layers, D]
    pub layer_embed: Tensor,
    /// [3D, D] each, gate blocks r, z, n (PyTorch GRUCell).
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    /// [3D] each.
    pub b_ih: Tensor,
    pub b_hh: Tensor,
    /// [D, D]; then per layer a gain and a bias, [layers, D] each.
    pub w_out: Tensor,
    pub gain: Tensor,
    pub b_out: Tensor,
}

impl Dynamics {
    /// A fresh model: GRU weights uniform in +-1/sqrt(D) (PyTorch's GRUCell init), layer vectors
    /// small, the output map zero (so it starts as the identity).
    pub fn init(config: DynamicsConfig, seed: u64, device: &Device) -> Result<Self> {
        let DynamicsConfig { layers, d_model: d } = config;
        if layers == 0 || d == 0 {
            return shape_err("Dynamics::init", format!("layers {layers}, d_model {d}"));
        }
        let mut rng = Rng::new(seed);
        let bound = 1.0 / (d as f32).sqrt();
        let var = |data: Vec<f32>, shape: &[usize]| -> Result<Tensor> {
            Ok(Tensor::from_f32(data, shape, device)?.as_variable())
        };
        Ok(Dynamics {
            config,
            layer_embed: var(rng.normal_vec(layers * d, 0.1), &[layers, d])?,
            w_ih: var(rng.uniform_vec(3 * d * d, bound), &[3 * d, d])?,
            w_hh: var(rng.uniform_vec(3 * d * d, bound), &[3 * d, d])?,
            b_ih: var(rng.uniform_vec(3 * d, bound), &[3 * d])?,
            b_hh: var(rng.uniform_vec(3 * d, bound), &[3 * d])?,
            w_out: var(vec![0.0; d * d], &[d, d])?,
            gain: var(vec![1.0; layers * d], &[layers, d])?,
            b_out: var(vec![0.0; layers * d], &[layers, d])?,
        })
    }

    pub fn named_parameters(&self) -> Vec<(&'static str, &Tensor)> {
        vec![
            ("layer_embed", &self.layer_embed),
            ("gru.weight_ih", &self.w_ih),
            ("gru.weight_hh", &self.w_hh),
            ("gru.bias_ih", &self.b_ih),
            ("gru.bias_hh", &self.b_hh),
            ("out.weight", &self.w_out),
            ("out.gain", &self.gain),
            ("out.bias", &self.b_out),
        ]
    }

    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        vec![
            &mut self.layer_embed,
            &mut self.w_ih,
            &mut self.w_hh,
            &mut self.b_ih,
            &mut self.b_hh,
            &mut self.w_out,
            &mut self.gain,
            &mut self.b_out,
        ]
    }

    pub fn parameter_count(&self) -> usize {
        self.named_parameters()
            .iter()
            .map(|(_, p)| p.elem_count())
            .sum()
    }

    /// s: [B, layers, D] standardised latents; x: [B, D] the tokens' input vectors (see
    /// [`TokenInputs`]) -> [B, layers, D], the next latents.
    pub fn step(&self, s: &Tensor, x: &Tensor) -> Result<Tensor> {
        let DynamicsConfig { layers, d_model: d } = self.config;
        let b = s.dim(0);
        if s.shape() != [b, layers, d] || x.shape() != [b, d] {
            return shape_err(
                "Dynamics::step",
                format!(
                    "s {:?} must be [B, {layers}, {d}] and x {:?} [B, {d}]",
                    s.shape(),
                    x.shape()
                ),
            );
        }
        // Every layer's row reads its token's vector plus its own layer vector.
        let x_rows = ops::concat(&vec![&x.reshape(&[b, 1, d])?; layers], 1)?;
        let x_rows = ops::add(&x_rows, &self.layer_embed)?.reshape(&[b * layers, d])?;
        let h = s.reshape(&[b * layers, d])?;
        let g = ops::gru_cell(&x_rows, &h, &self.w_ih, &self.w_hh, &self.b_ih, &self.b_hh)?;
        let delta = ops::linear(&g, &self.w_out, None)?.reshape(&[b, layers, d])?;
        let delta = ops::add(&ops::mul(&delta, &self.gain)?, &self.b_out)?;
        ops::add(s, &delta)
    }

    /// Open-loop unroll: from s0 [B, layers, D] and the input vectors of the next k tokens (each
    /// [B, D]), the k predicted latents, each [B, layers, D]; step j reads input j and its own
    /// previous prediction.
    pub fn unroll(&self, s0: &Tensor, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut s = s0.clone();
        let mut out = Vec::with_capacity(inputs.len());
        for x in inputs {
            s = self.step(&s, x)?;
            out.push(s.clone());
        }
        Ok(out)
    }

    /// Mean squared error of an open-loop unroll against the real latents, averaged over the k
    /// steps (MuZero's unrolled loss): `targets[j]` is the real s after reading input j.
    pub fn unrolled_loss(
        &self,
        s0: &Tensor,
        inputs: &[Tensor],
        targets: &[Tensor],
    ) -> Result<Tensor> {
        if inputs.is_empty() || inputs.len() != targets.len() {
            return shape_err(
                "Dynamics::unrolled_loss",
                format!("{} inputs for {} targets", inputs.len(), targets.len()),
            );
        }
        let mut total: Option<Tensor> = None;
        for (pred, target) in self.unroll(s0, inputs)?.iter().zip(targets) {
            let e = ops::sub(pred, target)?;
            let mse = ops::mean(&ops::mul(&e, &e)?)?;
            total = Some(match total {
                None => mse,
                Some(t) => ops::add(&t, &mse)?,
            });
        }
        let total = total.expect("at least one step");
        ops::scale(&total, 1.0 / inputs.len() as f32)
    }
}

/// The dynamics' input vector of each token: the backbone's embedding row divided by the table's
/// rms, so the GRU sees unit-scale inputs whatever the backbone's init. Frozen (a detached copy).
#[derive(Clone)]
pub struct TokenInputs {
    table: Tensor,
}

impl TokenInputs {
    pub fn new(embeddings: &Tensor) -> Result<Self> {
        let table = embeddings.detach();
        let rms = ops::mean(&ops::mul(&table, &table)?)?
            .scalar()?
            .sqrt()
            .max(1e-12);
        Ok(TokenInputs {
            table: ops::scale(&table, 1.0 / rms)?.detach(),
        })
    }

    /// ids U32 [B] -> [B, D]
    pub fn of(&self, ids: &Tensor) -> Result<Tensor> {
        ops::embedding(ids, &self.table)
    }
}
