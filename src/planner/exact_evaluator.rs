//! The `exact` dynamics ablation: leaves are expanded with the real backbone step on a copy of the
//! recurrent state, batched over the wave's leaves (one `Backbone::step_latents` over W rows), so
//! the search sees what the model would really do rather than what the GRU predicts.
//!
//! The search keeps latents opaque, so a node's "latent" here is the packed record
//! `[z (standard units) | conv states | SSM states]` of every layer; the head and the critic read
//! only its z part. It costs a full backbone step per leaf and the state's size per node (nano:
//! 40K floats a node), which is the point of the ablation: the learned dynamics' price against its
//! accuracy.

use super::evaluator::{Evaluation, Expansion, LeafEvaluator};
use super::latent_model::LatentModel;
use crate::autograd::no_grad;
use crate::error::{Result, shape_err};
use crate::state::{LayerState, State};
use crate::tensor::Tensor;

/// Packs latents and states, and steps them with the backbone.
pub struct ExactEvaluator<'a> {
    model: &'a LatentModel,
    top_k: usize,
}

impl<'a> ExactEvaluator<'a> {
    pub fn new(model: &'a LatentModel, top_k: usize) -> Self {
        ExactEvaluator { model, top_k }
    }

    /// One row's z (standard units) and its state (batch 1) as a node latent.
    pub fn pack(&self, z: &[f32], state: &State) -> Result<Vec<f32>> {
        let mut out = z.to_vec();
        for l in &state.layers {
            out.extend(l.conv.to_vec_f32()?);
        }
        for l in &state.layers {
            out.extend(l.ssm.to_vec_f32()?);
        }
        Ok(out)
    }

    fn sizes(&self) -> (usize, usize, usize) {
        let c = &self.model.backbone.config;
        let layers = c.applications();
        (
            layers * c.hidden_size,
            (c.conv_kernel - 1) * c.d_inner(),
            c.d_inner() * c.state_size,
        )
    }

    /// The packed rows of a wave as one batched state, and their z parts.
    fn unpack(&self, rows: &[&[f32]]) -> Result<(Vec<f32>, State)> {
        let (zn, conv, ssm) = self.sizes();
        let c = &self.model.backbone.config;
        let layers = c.applications();
        let want = zn + layers * (conv + ssm);
        if let Some(bad) = rows.iter().find(|r| r.len() != want) {
            return shape_err(
                "ExactEvaluator",
                format!("a packed node of {} values, expected {want}", bad.len()),
            );
        }
        let b = rows.len();
        let device = self.model.backbone.device();
        let z: Vec<f32> = rows.iter().flat_map(|r| r[..zn].iter().copied()).collect();
        let layer = |i: usize| -> Result<LayerState> {
            let conv_rows: Vec<f32> = rows
                .iter()
                .flat_map(|r| r[zn + i * conv..][..conv].iter().copied())
                .collect();
            let ssm_rows: Vec<f32> = rows
                .iter()
                .flat_map(|r| r[zn + layers * conv + i * ssm..][..ssm].iter().copied())
                .collect();
            Ok(LayerState {
                conv: Tensor::from_f32(conv_rows, &[b, c.conv_kernel - 1, c.d_inner()], &device)?,
                ssm: Tensor::from_f32(ssm_rows, &[b, c.d_inner(), c.state_size], &device)?,
            })
        };
        let state = State {
            layers: (0..layers).map(layer).collect::<Result<Vec<_>>>()?,
            position: 0,
        };
        Ok((z, state))
    }

    /// Steps packed rows with one token each: the new packed rows and their z parts.
    pub fn step(&self, rows: &[&[f32]], tokens: &[u32]) -> Result<(Vec<Vec<f32>>, Vec<f32>)> {
        let _off = no_grad();
        let (_, mut state) = self.unpack(rows)?;
        let device = self.model.backbone.device();
        let ids = Tensor::from_u32(tokens.to_vec(), &[tokens.len()], &device)?;
        let (_, latents) = self.model.backbone.step_latents(&ids, &mut state)?;
        let per_layer = latents
            .iter()
            .map(|l| l.to_vec_f32())
            .collect::<Result<Vec<_>>>()?;
        let d = self.model.d_model();
        let mut z = Vec::with_capacity(rows.len() * per_layer.len() * d);
        for r in 0..rows.len() {
            for l in &per_layer {
                z.extend_from_slice(&l[r * d..][..d]);
            }
        }
        self.model.standardizer.apply(&mut z);
        let zn = per_layer.len() * d;
        let conv: Vec<Vec<f32>> = state
            .layers
            .iter()
            .map(|l| l.conv.to_vec_f32())
            .collect::<Result<_>>()?;
        let ssm: Vec<Vec<f32>> = state
            .layers
            .iter()
            .map(|l| l.ssm.to_vec_f32())
            .collect::<Result<_>>()?;
        let packed = (0..rows.len())
            .map(|r| {
                let mut out = z[r * zn..][..zn].to_vec();
                for c in &conv {
                    let n = c.len() / rows.len();
                    out.extend_from_slice(&c[r * n..][..n]);
                }
                for s in &ssm {
                    let n = s.len() / rows.len();
                    out.extend_from_slice(&s[r * n..][..n]);
                }
                out
            })
            .collect();
        Ok((packed, z))
    }

    /// The search's view of packed rows: the head and critic on their z parts.
    pub fn evaluations(&self, packed: Vec<Vec<f32>>, z: &[f32]) -> Result<Vec<Evaluation>> {
        let evals = self.model.evaluate(z, self.top_k)?;
        Ok(evals
            .into_iter()
            .zip(packed)
            .map(|(e, p)| e.into_evaluation(p))
            .collect())
    }
}

impl LeafEvaluator for ExactEvaluator<'_> {
    fn evaluate(&mut self, requests: &[Expansion<'_>]) -> Result<Vec<Evaluation>> {
        let rows: Vec<&[f32]> = requests.iter().map(|r| r.parent_latent).collect();
        let tokens: Vec<u32> = requests.iter().map(|r| r.token).collect();
        let (packed, z) = self.step(&rows, &tokens)?;
        self.evaluations(packed, &z)
    }
}
