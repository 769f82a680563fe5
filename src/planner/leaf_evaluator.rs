//! The search's evaluator on the learned model: a wave of leaves is one batched dynamics step from
//! the parents' latents, one batched head and critic pass, and (for `rollout` / `mixed` leaf
//! values) Monte-Carlo rollouts of all the wave's leaves in lockstep.
//!
//! A rollout's return estimates the same thing the critic predicts (`latent::value_target`): the
//! model's own per-token log-likelihood of what comes next, here of tokens it samples from its
//! top-k policy along the dynamics, `depth` steps. Samples are Gumbel-max draws on the device
//! (`ops::sample_logits`, `shaders/rollout.wgsl`) from the counter-based stream, one stream per
//! leaf, so a leaf's rollout is the same whatever wave it lands in.

use super::evaluator::{Evaluation, Expansion, LeafEvaluator};
use super::latent_model::LatentModel;
use crate::error::Result;

/// Where a leaf's value comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LeafValue {
    Critic,
    Rollout {
        depth: usize,
    },
    /// The mean of the critic's value and a rollout's return (AlphaGo's lambda = 1/2).
    Mixed {
        depth: usize,
    },
}

pub struct ModelEvaluator<'a> {
    model: &'a LatentModel,
    leaf_value: LeafValue,
    top_k: usize,
    seed: u32,
    /// Leaves evaluated so far: each leaf's rollout stream.
    leaves: u32,
    /// The identity-dynamics ablation: a child keeps its parent's latent.
    identity: bool,
}

impl<'a> ModelEvaluator<'a> {
    pub fn new(model: &'a LatentModel, leaf_value: LeafValue, top_k: usize, seed: u32) -> Self {
        ModelEvaluator {
            model,
            leaf_value,
            top_k,
            seed,
            leaves: 0,
            identity: false,
        }
    }

    /// The ablation without dynamics: every step leaves the latent where it was.
    pub fn identity_dynamics(mut self) -> Self {
        self.identity = true;
        self
    }

    /// The next latents of rows `s` after `tokens`: the dynamics' prediction, or `s` itself.
    fn advance(&self, s: &[f32], tokens: &[u32]) -> Result<Vec<f32>> {
        if self.identity {
            Ok(s.to_vec())
        } else {
            self.model.step(s, tokens)
        }
    }

    /// Mean log-probability of `depth` tokens sampled along the dynamics from each of the rows
    /// `s` (standard units), all rows in lockstep; `first` numbers the rows' streams.
    fn rollouts(&self, mut s: Vec<f32>, rows: usize, depth: usize, first: u32) -> Result<Vec<f32>> {
        let mut total = vec![0f32; rows];
        for j in 0..depth {
            let (tokens, log_probs) = self
                .model
                .sample(&s, self.top_k, self.seed, first, j as u32)?;
            for (t, lp) in total.iter_mut().zip(&log_probs) {
                *t += lp;
            }
            s = self.advance(&s, &tokens)?;
        }
        Ok(total.into_iter().map(|t| t / depth.max(1) as f32).collect())
    }
}

impl LeafEvaluator for ModelEvaluator<'_> {
    fn evaluate(&mut self, requests: &[Expansion<'_>]) -> Result<Vec<Evaluation>> {
        let rows = requests.len();
        let parents: Vec<f32> = requests
            .iter()
            .flat_map(|r| r.parent_latent.iter().copied())
            .collect();
        let tokens: Vec<u32> = requests.iter().map(|r| r.token).collect();
        let next = self.advance(&parents, &tokens)?;
        let evals = self.model.evaluate(&next, self.top_k)?;
        let first = self.leaves;
        self.leaves += rows as u32;
        let returns = match self.leaf_value {
            LeafValue::Critic => None,
            LeafValue::Rollout { depth } | LeafValue::Mixed { depth } => {
                Some(self.rollouts(next.clone(), rows, depth, first)?)
            }
        };
        let per = next.len() / rows.max(1);
        Ok(evals
            .into_iter()
            .enumerate()
            .map(|(r, e)| {
                let critic = e.value;
                let mut ev = e.into_evaluation(next[r * per..][..per].to_vec());
                ev.value = match (self.leaf_value, &returns) {
                    (LeafValue::Rollout { .. }, Some(g)) => g[r],
                    (LeafValue::Mixed { .. }, Some(g)) => 0.5 * (critic + g[r]),
                    _ => critic,
                };
                ev
            })
            .collect())
    }
}
