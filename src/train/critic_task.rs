//! Stage 4's objective: one value head per layer on the standardised latents of the distill
//! stage's traces, learning the standardised value target (`latent::value_target`). The first
//! `parts` training parts are held in memory with their targets, computed once.

use std::path::Path;

use crate::Device;
use crate::autograd::no_grad;
use crate::data::{DataPosition, permutation};
use crate::error::{Error, Result};
use crate::latent::{Critic, LatentTrace, Standardizer};
use crate::tensor::Tensor;
use crate::train::task::{Task, TaskEval};
use crate::train::task_weights::{TaskWeights, names_and_shapes, save_task_weights};

pub const CRITIC_FILE: &str = "critic.safetensors";

/// Latents with a value target at each position (NaN: none).
pub struct ValuedTrace {
    pub trace: LatentTrace,
    pub values: Vec<f32>,
}

impl ValuedTrace {
    /// Flat positions (window * len + t) that have a target.
    fn scored(&self) -> Vec<usize> {
        (0..self.values.len())
            .filter(|&i| self.values[i].is_finite())
            .collect()
    }
}

pub struct CriticTask {
    pub critic: Critic,
    pub standardizer: Standardizer,
    /// The training targets' mean and spread: heads predict (v - mean) / std.
    pub value_mean: f32,
    pub value_std: f32,
    train: ValuedTrace,
    val: ValuedTrace,
    samples: Vec<usize>,
    order: Vec<usize>,
    position: DataPosition,
    device: Device,
}

impl CriticTask {
    pub fn new(
        critic: Critic,
        standardizer: Standardizer,
        train: ValuedTrace,
        val: ValuedTrace,
        position: DataPosition,
    ) -> Result<Self> {
        let samples = train.scored();
        if samples.is_empty() || val.scored().is_empty() {
            return Err(Error::InvalidArgument {
                op: "CriticTask::new",
                detail: "no position has a value target: the windows are shorter than the horizon"
                    .into(),
            });
        }
        let n = samples.len() as f64;
        let mean = samples.iter().map(|&i| train.values[i] as f64).sum::<f64>() / n;
        let var = samples
            .iter()
            .map(|&i| (train.values[i] as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let device = critic.heads[0].w1.device();
        Ok(CriticTask {
            order: permutation(samples.len(), position.seed, position.epoch),
            critic,
            standardizer,
            value_mean: mean as f32,
            value_std: (var.sqrt() as f32).max(1e-6),
            train,
            val,
            samples,
            position,
            device,
        })
    }

    /// Standardised latents [B, layers, D] and standardised targets [B] at flat positions.
    fn batch(&self, data: &ValuedTrace, at: &[usize]) -> Result<(Tensor, Tensor)> {
        let t = &data.trace;
        let n = t.layers * t.d_model;
        let mut s = Vec::with_capacity(at.len() * n);
        for &i in at {
            let mut z = t.z[i * n..][..n].to_vec();
            self.standardizer.apply(&mut z);
            s.extend(z);
        }
        let targets = at
            .iter()
            .map(|&i| (data.values[i] - self.value_mean) / self.value_std)
            .collect();
        Ok((
            Tensor::from_f32(s, &[at.len(), t.layers, t.d_model], &self.device)?,
            Tensor::from_f32(targets, &[at.len()], &self.device)?,
        ))
    }

    /// Every head's prediction and the realised value at each held-out position, in nats per
    /// token: (per head, realised).
    pub fn held_out_predictions(&self) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
        self.predictions(&self.val)
    }

    /// As `held_out_predictions`, on any traces with targets.
    pub fn predictions(&self, data: &ValuedTrace) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
        let _off = no_grad();
        let at = data.scored();
        let layers = self.critic.config.layers;
        let mut heads = vec![Vec::with_capacity(at.len()); layers];
        for chunk in at.chunks(256) {
            let (s, _) = self.batch(data, chunk)?;
            let v = self.critic.values(&s)?.to_vec_f32()?;
            for row in v.chunks_exact(layers) {
                for (h, &x) in row.iter().enumerate() {
                    heads[h].push((x * self.value_std + self.value_mean) as f64);
                }
            }
        }
        let realised = at.iter().map(|&i| data.values[i] as f64).collect();
        Ok((heads, realised))
    }

    pub fn load_weights(&mut self, dir: &Path) -> Result<()> {
        let mut file = TaskWeights::open(&dir.join(CRITIC_FILE))?;
        let named = names_and_shapes(&self.named_parameters());
        let mean = file.take("crsm.critic.value_mean", &[1])?[0];
        let std = file.take("crsm.critic.value_std", &[1])?[0];
        file.take_parameters(&named, self.critic.parameters_mut(), &self.device)?;
        self.value_mean = mean;
        self.value_std = std;
        Ok(())
    }
}

impl Task for CriticTask {
    fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        self.critic
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (format!("crsm.critic.{n}"), t))
            .collect()
    }

    fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        self.critic.parameters_mut()
    }

    /// The heads' matrices decay, their biases not.
    fn decays(&self) -> Vec<bool> {
        self.named_parameters()
            .iter()
            .map(|(n, _)| n.ends_with(".w1") || n.ends_with(".w2"))
            .collect()
    }

    fn next_loss(&mut self, batch_size: usize) -> Result<(Tensor, u64)> {
        let mut at = Vec::with_capacity(batch_size);
        for _ in 0..batch_size {
            if self.position.index == self.order.len() {
                self.position.epoch += 1;
                self.position.index = 0;
                self.order =
                    permutation(self.samples.len(), self.position.seed, self.position.epoch);
            }
            at.push(self.samples[self.order[self.position.index]]);
            self.position.index += 1;
        }
        let (s, targets) = self.batch(&self.train, &at)?;
        Ok((self.critic.loss(&s, &targets)?, batch_size as u64))
    }

    fn evaluate(&mut self, batch_size: usize, max_items: usize) -> Result<TaskEval> {
        let _off = no_grad();
        let mut at = self.val.scored();
        if max_items > 0 {
            at.truncate(max_items);
        }
        let (mut total, mut count) = (0f64, 0usize);
        for chunk in at.chunks(batch_size.max(1)) {
            let (s, targets) = self.batch(&self.val, chunk)?;
            total += self.critic.loss(&s, &targets)?.scalar()? as f64 * chunk.len() as f64;
            count += chunk.len();
        }
        Ok(TaskEval {
            loss: total / count.max(1) as f64,
            bpb: None,
            count,
        })
    }

    fn data_position(&self) -> DataPosition {
        self.position
    }

    fn save_weights(&self, dir: &Path) -> Result<()> {
        save_task_weights(
            &dir.join(CRITIC_FILE),
            self.named_parameters(),
            vec![
                ("crsm.critic.value_mean", vec![1], vec![self.value_mean]),
                ("crsm.critic.value_std", vec![1], vec![self.value_std]),
            ],
        )
    }
}
