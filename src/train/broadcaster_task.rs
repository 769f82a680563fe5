//! Stage 2's second objective: the delta broadcaster, trained on the counterfactual state pairs
//! collected with the traces (`latent::state_pairs`), drawn part by part (`PartStream`). Its
//! saved file carries the per-layer scales beside the weights.

use std::path::Path;

use crate::Device;
use crate::autograd::no_grad;
use crate::data::DataPosition;
use crate::error::{Error, Result};
use crate::latent::Standardizer;
use crate::latent::broadcaster::Broadcaster;
use crate::latent::state_pairs::StatePairs;
use crate::latent::trace_shards::TraceSet;
use crate::tensor::Tensor;
use crate::train::part_stream::PartStream;
use crate::train::task::{Task, TaskEval};
use crate::train::task_weights::{TaskWeights, names_and_shapes, save_task_weights};

pub const BROADCASTER_FILE: &str = "broadcaster.safetensors";
const H_SCALE: &str = "crsm.broadcaster.h_scale";
const DELTA_SCALE: &str = "crsm.broadcaster.delta_scale";

pub struct BroadcasterTask {
    pub broadcaster: Broadcaster,
    /// The dynamics' standardiser: the broadcaster reads latent changes in its units.
    pub standardizer: Standardizer,
    train: TraceSet,
    val: StatePairs,
    stream: PartStream,
    loaded: Option<(usize, StatePairs)>,
    device: Device,
}

impl BroadcasterTask {
    /// `broadcaster` (its scales fitted) trained on the pairs of `train`, evaluated on `val`.
    pub fn new(
        broadcaster: Broadcaster,
        standardizer: Standardizer,
        train: TraceSet,
        val: StatePairs,
        position: DataPosition,
    ) -> Result<Self> {
        let h = &train.header;
        if h.pairs_per_window == 0 || val.count == 0 {
            return Err(Error::InvalidArgument {
                op: "BroadcasterTask::new",
                detail: format!(
                    "the traces hold no state pairs (pairs_per_window {}, {} held-out pairs)",
                    h.pairs_per_window, val.count
                ),
            });
        }
        let sizes = (0..h.parts())
            .map(|p| h.windows_in_part(p) * h.pairs_per_window)
            .collect();
        let device = broadcaster.layers[0].input.device();
        Ok(BroadcasterTask {
            broadcaster,
            standardizer,
            train,
            val,
            stream: PartStream::new(sizes, position)?,
            loaded: None,
            device,
        })
    }

    /// Puts back the weights and scales a checkpoint saved (`save_weights`).
    pub fn load_weights(&mut self, dir: &Path) -> Result<()> {
        let mut file = TaskWeights::open(&dir.join(BROADCASTER_FILE))?;
        let named = names_and_shapes(&self.named_parameters());
        let layers = self.broadcaster.config.layers;
        let h_scale = file.take(H_SCALE, &[layers])?;
        let delta_scale = file.take(DELTA_SCALE, &[layers])?;
        file.take_parameters(&named, self.broadcaster.parameters_mut(), &self.device)?;
        self.broadcaster.h_scale = h_scale;
        self.broadcaster.delta_scale = delta_scale;
        Ok(())
    }
}

impl Task for BroadcasterTask {
    fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        self.broadcaster
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (format!("crsm.broadcaster.{n}"), t))
            .collect()
    }

    fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        self.broadcaster.parameters_mut()
    }

    /// Every map is a matrix; weight decay applies to all (the stage's config says how much).
    fn decays(&self) -> Vec<bool> {
        vec![true; self.broadcaster.named_parameters().len()]
    }

    fn next_loss(&mut self, batch_size: usize) -> Result<(Tensor, u64)> {
        let c = self.broadcaster.config;
        let mut batch = StatePairs::empty(c.layers, c.d_model, c.d_inner, c.d_state);
        for _ in 0..batch_size.max(1) {
            let (part, i) = self.stream.next_sample();
            if self.loaded.as_ref().is_none_or(|(p, _)| *p != part) {
                self.loaded = Some((part, self.train.pairs(part)?));
            }
            let (_, pairs) = self.loaded.as_ref().expect("loaded above");
            batch.push_from(pairs, i);
        }
        let loss = self
            .broadcaster
            .pair_loss(&batch, &self.standardizer, &self.device)?;
        Ok((loss, batch.count as u64))
    }

    fn evaluate(&mut self, batch_size: usize, max_items: usize) -> Result<TaskEval> {
        let _off = no_grad();
        let c = self.broadcaster.config;
        let n = match max_items {
            0 => self.val.count,
            m => m.min(self.val.count),
        };
        let (mut total, mut count) = (0f64, 0usize);
        for first in (0..n).step_by(batch_size.max(1)) {
            let mut batch = StatePairs::empty(c.layers, c.d_model, c.d_inner, c.d_state);
            for i in first..(first + batch_size.max(1)).min(n) {
                batch.push_from(&self.val, i);
            }
            let loss = self
                .broadcaster
                .pair_loss(&batch, &self.standardizer, &self.device)?
                .scalar()? as f64;
            total += loss * batch.count as f64;
            count += batch.count;
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
        let layers = self.broadcaster.config.layers;
        save_task_weights(
            &dir.join(BROADCASTER_FILE),
            self.named_parameters(),
            vec![
                (H_SCALE, vec![layers], self.broadcaster.h_scale.clone()),
                (
                    DELTA_SCALE,
                    vec![layers],
                    self.broadcaster.delta_scale.clone(),
                ),
            ],
        )
    }
}
