//! Stage 2's objective: the latent dynamics, trained on traces of the frozen backbone
//! (`latent::trace_shards`) with the open-loop loss unrolled over `unroll` steps.
//!
//! A sample is (window, start): the real latents at `start`, the next `unroll` tokens and the
//! real latents after each, drawn part by part (`PartStream`).

use std::path::Path;

use crate::Device;
use crate::autograd::no_grad;
use crate::data::DataPosition;
use crate::error::{Error, Result};
use crate::latent::trace_shards::TraceSet;
use crate::latent::{Dynamics, LatentTrace, Standardizer, TokenInputs};
use crate::tensor::Tensor;
use crate::train::part_stream::PartStream;
use crate::train::task::{Task, TaskEval};
use crate::train::task_weights::{TaskWeights, names_and_shapes, save_task_weights};

pub const DYNAMICS_FILE: &str = "dynamics.safetensors";

pub struct DynamicsTask {
    pub dynamics: Dynamics,
    pub standardizer: Standardizer,
    inputs: TokenInputs,
    train: TraceSet,
    val: LatentTrace,
    unroll: usize,
    stream: PartStream,
    /// The part in memory.
    loaded: Option<(usize, LatentTrace)>,
    device: Device,
}

impl DynamicsTask {
    /// `dynamics` is trained on `train` (its latents standardised by `standardizer`, fitted on
    /// the training traces) and evaluated on `val`; `embeddings` is the backbone's table.
    pub fn new(
        dynamics: Dynamics,
        standardizer: Standardizer,
        embeddings: &Tensor,
        train: TraceSet,
        val: LatentTrace,
        unroll: usize,
        position: DataPosition,
    ) -> Result<Self> {
        let h = &train.header;
        if unroll == 0 || unroll >= h.len || unroll >= val.len {
            return Err(Error::InvalidArgument {
                op: "DynamicsTask::new",
                detail: format!(
                    "unroll {unroll} needs windows longer than it (train {}, val {})",
                    h.len, val.len
                ),
            });
        }
        let device = dynamics.layer_embed.device();
        let per_window = h.len - unroll;
        let sizes = (0..h.parts())
            .map(|p| h.windows_in_part(p) * per_window)
            .collect();
        Ok(DynamicsTask {
            inputs: TokenInputs::new(embeddings)?,
            dynamics,
            standardizer,
            train,
            val,
            unroll,
            stream: PartStream::new(sizes, position)?,
            loaded: None,
            device,
        })
    }

    /// Puts back the weights and the standardiser a checkpoint saved (`save_weights`); every
    /// tensor must be there with its shape.
    pub fn load_weights(&mut self, dir: &Path) -> Result<()> {
        let mut file = TaskWeights::open(&dir.join(DYNAMICS_FILE))?;
        let named = names_and_shapes(&self.named_parameters());
        let (layers, d) = (self.standardizer.layers, self.standardizer.d_model);
        let mean = file.take("crsm.latent.mean", &[layers, d])?;
        let std = file.take("crsm.latent.std", &[layers, d])?;
        file.take_parameters(&named, self.dynamics.parameters_mut(), &self.device)?;
        self.standardizer.mean = mean;
        self.standardizer.std = std;
        Ok(())
    }

    /// The (window, start) of the next training sample, loading its part when needed.
    fn next_sample(&mut self) -> Result<(usize, usize)> {
        let (part, sample) = self.stream.next_sample();
        if self.loaded.as_ref().is_none_or(|(p, _)| *p != part) {
            self.loaded = Some((part, self.train.part(part)?));
        }
        let per = self.train.header.len - self.unroll;
        Ok((sample / per, sample % per))
    }

    /// s0 [B, layers, D], the inputs of the next `unroll` tokens, and the real latents after
    /// each, for samples of `trace`.
    fn batch_of(
        &self,
        trace: &LatentTrace,
        samples: &[(usize, usize)],
    ) -> Result<(Tensor, Vec<Tensor>, Vec<Tensor>)> {
        let (b, layers, d) = (samples.len(), trace.layers, trace.d_model);
        let standard = |w: usize, t: usize| {
            let mut v = trace.at(w, t).to_vec();
            self.standardizer.apply(&mut v);
            v
        };
        let s0: Vec<f32> = samples.iter().flat_map(|&(w, t)| standard(w, t)).collect();
        let s0 = Tensor::from_f32(s0, &[b, layers, d], &self.device)?;
        let mut xs = Vec::with_capacity(self.unroll);
        let mut ys = Vec::with_capacity(self.unroll);
        for j in 1..=self.unroll {
            let ids: Vec<u32> = samples
                .iter()
                .map(|&(w, t)| trace.token(w, t + j))
                .collect();
            xs.push(
                self.inputs
                    .of(&Tensor::from_u32(ids, &[b], &self.device)?)?,
            );
            let y: Vec<f32> = samples
                .iter()
                .flat_map(|&(w, t)| standard(w, t + j))
                .collect();
            ys.push(Tensor::from_f32(y, &[b, layers, d], &self.device)?);
        }
        Ok((s0, xs, ys))
    }
}

impl Task for DynamicsTask {
    fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        self.dynamics
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (format!("crsm.dynamics.{n}"), t))
            .collect()
    }

    fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        self.dynamics.parameters_mut()
    }

    /// The GRU's and the output map's matrices decay; vectors (biases, gains, layer vectors) not.
    fn decays(&self) -> Vec<bool> {
        self.dynamics
            .named_parameters()
            .iter()
            .map(|(n, _)| {
                n.ends_with("weight_ih") || n.ends_with("weight_hh") || *n == "out.weight"
            })
            .collect()
    }

    fn next_loss(&mut self, batch_size: usize) -> Result<(Tensor, u64)> {
        if batch_size == 0 {
            return Err(Error::InvalidArgument {
                op: "DynamicsTask::next_loss",
                detail: "batch size 0".into(),
            });
        }
        // Each sample's unroll + 1 positions are copied out as they are drawn, so a batch that
        // crosses into the next part never needs two parts in memory.
        let (layers, d) = (self.train.header.layers, self.train.header.d_model);
        let mut batch = LatentTrace {
            windows: batch_size,
            len: self.unroll + 1,
            layers,
            d_model: d,
            tokens: Vec::with_capacity(batch_size * (self.unroll + 1)),
            z: Vec::with_capacity(batch_size * (self.unroll + 1) * layers * d),
        };
        for _ in 0..batch_size {
            let (w, t) = self.next_sample()?;
            let (_, trace) = self.loaded.as_ref().expect("next_sample loads its part");
            for u in t..=t + self.unroll {
                batch.tokens.push(trace.token(w, u));
                batch.z.extend_from_slice(trace.at(w, u));
            }
        }
        let samples: Vec<(usize, usize)> = (0..batch_size).map(|w| (w, 0)).collect();
        let (s0, xs, ys) = self.batch_of(&batch, &samples)?;
        let loss = self.dynamics.unrolled_loss(&s0, &xs, &ys)?;
        Ok((loss, (batch_size * self.unroll) as u64))
    }

    fn evaluate(&mut self, batch_size: usize, max_items: usize) -> Result<TaskEval> {
        let _off = no_grad();
        let starts: Vec<(usize, usize)> = (0..self.val.windows)
            .flat_map(|w| {
                (0..self.val.len - self.unroll)
                    .step_by(self.unroll)
                    .map(move |t| (w, t))
            })
            .take(if max_items == 0 {
                usize::MAX
            } else {
                max_items
            })
            .collect();
        let (mut total, mut count) = (0f64, 0usize);
        for chunk in starts.chunks(batch_size.max(1)) {
            let (s0, xs, ys) = self.batch_of(&self.val, chunk)?;
            let loss = self.dynamics.unrolled_loss(&s0, &xs, &ys)?.scalar()? as f64;
            total += loss * chunk.len() as f64;
            count += chunk.len();
        }
        Ok(TaskEval {
            loss: total / count.max(1) as f64,
            bpb: None,
            count,
        })
    }

    fn data_position(&self) -> DataPosition {
        self.stream.position()
    }

    fn save_weights(&self, dir: &Path) -> Result<()> {
        let st = &self.standardizer;
        let shape = vec![st.layers, st.d_model];
        save_task_weights(
            &dir.join(DYNAMICS_FILE),
            self.named_parameters(),
            vec![
                ("crsm.latent.mean", shape.clone(), st.mean.clone()),
                ("crsm.latent.std", shape, st.std.clone()),
            ],
        )
    }
}
