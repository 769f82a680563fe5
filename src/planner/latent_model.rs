//! The parts of an assembled CRSM the planner reads, and what it computes with them at a node:
//! from a batch of latents (standard units), the backbone head's top-k tokens and their
//! log-probabilities (the node's actions and priors), the policy's certainty, and the critic's
//! per-layer values and confidences.

use std::sync::Arc;

use crate::autograd::no_grad;
use crate::error::{Result, shape_err};
use crate::latent::checkpoint::{CriticPart, CrsmCheckpoint, Stage};
use crate::latent::gates::Gates;
use crate::latent::{Broadcaster, Dynamics, Standardizer, TokenInputs, confidence};
use crate::model::Backbone;
use crate::ops;
use crate::tensor::Tensor;

/// Everything the planner and the injection need, shared between the generation thread and the
/// planner thread (tensors are reference-counted and read-only here).
pub struct LatentModel {
    pub backbone: Backbone,
    pub standardizer: Standardizer,
    pub dynamics: Dynamics,
    pub inputs: TokenInputs,
    pub critic: CriticPart,
    pub broadcaster: Broadcaster,
    pub gates: Gates,
}

/// One node as the model sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeEval {
    pub tokens: Vec<u32>,
    pub log_probs: Vec<f32>,
    pub certainty: f32,
    /// The heads' values (nats per token) and their mean.
    pub layer_values: Vec<f32>,
    pub value: f32,
    pub confidences: Vec<f32>,
}

impl LatentModel {
    /// From an assembled checkpoint that has every stage the planner needs; a missing one is an
    /// error naming it and the command that makes it.
    pub fn from_checkpoint(c: CrsmCheckpoint) -> Result<Arc<Self>> {
        for stage in [
            Stage::Dynamics,
            Stage::Broadcaster,
            Stage::Critic,
            Stage::Gates,
        ] {
            c.require(stage)?;
        }
        let inputs = TokenInputs::new(&c.backbone.embeddings)?;
        Ok(Arc::new(LatentModel {
            inputs,
            standardizer: c.standardizer.expect("required above"),
            dynamics: c.dynamics.expect("required above"),
            critic: c.critic.expect("required above"),
            broadcaster: c.broadcaster.expect("required above"),
            gates: c.gates.expect("required above"),
            backbone: c.backbone,
        }))
    }

    /// Every part at random over a backbone of `config` (benches, and shapes no run has trained):
    /// the dynamics' output map and the broadcaster's maps non-zero, so nothing is the identity.
    pub fn random(
        config: crate::model::CrsmConfig,
        seed: u64,
        device: &crate::Device,
    ) -> Result<Arc<Self>> {
        use crate::latent::{BroadcasterConfig, Critic, CriticConfig, DynamicsConfig};
        use crate::rng::Rng;
        let backbone = Backbone::init(config, seed, device)?;
        let c = backbone.config.clone();
        let (layers, d) = (c.applications(), c.hidden_size);
        let mut rng = Rng::new(seed ^ 0xC0FFEE);
        let mut dynamics = Dynamics::init(DynamicsConfig { layers, d_model: d }, seed, device)?;
        dynamics.w_out = Tensor::from_f32(rng.normal_vec(d * d, 0.05), &[d, d], device)?;
        let mut broadcaster = Broadcaster::init(
            BroadcasterConfig {
                layers,
                d_model: d,
                d_inner: c.d_inner(),
                d_state: c.state_size,
                rank: 32,
                channel_rank: 8,
            },
            seed,
            device,
        )?;
        for l in &mut broadcaster.layers {
            for t in [&mut l.out_add, &mut l.out_scale] {
                *t = Tensor::from_f32(rng.normal_vec(t.elem_count(), 0.1), t.shape(), device)?;
            }
        }
        let critic = Critic::init(
            CriticConfig {
                layers,
                d_model: d,
                hidden: 32,
            },
            seed,
            device,
        )?;
        Ok(Arc::new(LatentModel {
            inputs: TokenInputs::new(&backbone.embeddings)?,
            standardizer: Standardizer {
                layers,
                d_model: d,
                mean: vec![0.0; layers * d],
                std: vec![1.0; layers * d],
            },
            dynamics,
            critic: CriticPart {
                critic,
                value_mean: -3.0,
                value_std: 0.5,
                certainty_mean: -3.0,
                certainty_std: 0.5,
                held_out_rmse: vec![0.8; layers],
            },
            broadcaster,
            gates: Gates::init(layers, device)?,
            backbone,
        }))
    }

    pub fn layers(&self) -> usize {
        self.standardizer.layers
    }

    pub fn d_model(&self) -> usize {
        self.standardizer.d_model
    }

    /// Evaluates `rows` latents s [rows * layers * D] (standard units): top-k actions of the
    /// backbone head at the raw latents, certainty, critic values and confidences.
    pub fn evaluate(&self, s: &[f32], top_k: usize) -> Result<Vec<NodeEval>> {
        let _off = no_grad();
        let (layers, d) = (self.layers(), self.d_model());
        let n = layers * d;
        if s.is_empty() || !s.len().is_multiple_of(n) || top_k == 0 {
            return shape_err(
                "LatentModel::evaluate",
                format!(
                    "{} values for rows of {layers} x {d}, top_k {top_k}",
                    s.len()
                ),
            );
        }
        let rows = s.len() / n;
        let device = self.backbone.device();
        // On the device: the head, then only k values and one certainty per row come back.
        let logits = self.head_logits(s)?;
        let (top_lp, top_ids) = ops::topk_log_softmax(&logits, top_k.min(logits.dim(1)))?;
        let (top_lp, top_ids) = (top_lp.to_vec_f32()?, top_ids.to_vec_u32()?);
        let certainty = ops::certainty(&logits)?.to_vec_f32()?;
        let c = &self.critic;
        let c_std: Vec<f32> = certainty
            .iter()
            .map(|x| (x - c.certainty_mean) / c.certainty_std)
            .collect();
        let values = c
            .critic
            .values(
                &Tensor::from_f32(s.to_vec(), &[rows, layers, d], &device)?,
                &Tensor::from_f32(c_std, &[rows, 1], &device)?,
            )?
            .to_vec_f32()?;
        let k = top_lp.len() / rows;
        Ok((0..rows)
            .map(|r| {
                let v_std = &values[r * layers..][..layers];
                let layer_values: Vec<f32> = v_std
                    .iter()
                    .map(|v| v * c.value_std + c.value_mean)
                    .collect();
                let value = layer_values.iter().sum::<f32>() / layers as f32;
                NodeEval {
                    tokens: top_ids[r * k..][..k].to_vec(),
                    log_probs: top_lp[r * k..][..k].to_vec(),
                    certainty: certainty[r],
                    value,
                    confidences: confidence(v_std, &c.held_out_rmse),
                    layer_values,
                }
            })
            .collect())
    }

    /// One rollout draw for `rows` latents s (standard units): a token from each row's top-k
    /// policy, sampled on the device by Gumbel-max over the counter-based stream (row r draws
    /// from stream `stream_base + r` at `counter`), and its log-probability.
    pub fn sample(
        &self,
        s: &[f32],
        top_k: usize,
        seed: u32,
        stream_base: u32,
        counter: u32,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        let _off = no_grad();
        let logits = self.head_logits(s)?;
        let (lp, ids) = ops::topk_log_softmax(&logits, top_k.min(logits.dim(1)))?;
        let pick = ops::sample_logits(&lp, 1.0, seed, stream_base, counter)?.to_vec_u32()?;
        let (lp, ids) = (lp.to_vec_f32()?, ids.to_vec_u32()?);
        let k = lp.len() / pick.len();
        Ok(pick
            .iter()
            .enumerate()
            .map(|(r, &i)| (ids[r * k + i as usize], lp[r * k + i as usize]))
            .unzip())
    }

    /// The backbone head's logits [rows, V] at latents s (standard units).
    fn head_logits(&self, s: &[f32]) -> Result<Tensor> {
        let (layers, d) = (self.layers(), self.d_model());
        let rows = s.len() / (layers * d);
        let mut raw = s.to_vec();
        self.standardizer.invert(&mut raw);
        let all = Tensor::from_f32(raw, &[rows, layers, d], &self.backbone.device())?;
        let per_layer = (0..layers)
            .map(|i| ops::narrow(&all, 1, i, 1)?.reshape(&[rows, d]))
            .collect::<Result<Vec<_>>>()?;
        self.backbone.head(per_layer)
    }

    /// One dynamics step for a batch: s [rows * layers * D] standard units, one token per row.
    pub fn step(&self, s: &[f32], tokens: &[u32]) -> Result<Vec<f32>> {
        let _off = no_grad();
        let (layers, d) = (self.layers(), self.d_model());
        let rows = tokens.len();
        let device = self.backbone.device();
        let s = Tensor::from_f32(s.to_vec(), &[rows, layers, d], &device)?;
        let x = self
            .inputs
            .of(&Tensor::from_u32(tokens.to_vec(), &[rows], &device)?)?;
        self.dynamics.step(&s, &x)?.to_vec_f32()
    }
}
