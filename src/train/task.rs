//! What one training stage optimises. The trainer (`Trainer`) owns the loop (accumulation,
//! clipping, schedule, loss scaling, the NaN guard, checkpoints, exact resume, metrics); a task
//! owns the parameters, the data and the objective: the backbone on next-token loss
//! (pretraining, SFT), the dynamics on its unrolled latent loss, the critic on value targets.

use std::path::Path;

use crate::data::DataPosition;
use crate::error::Result;
use crate::tensor::Tensor;

/// A held-out evaluation: mean loss over `count` scored items, and bits per byte where the task
/// predicts text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskEval {
    pub loss: f64,
    pub bpb: Option<f64>,
    pub count: usize,
}

pub trait Task {
    /// The trained parameters in a fixed order (the optimizer's moments follow it), with the
    /// names they are saved under.
    fn named_parameters(&self) -> Vec<(String, &Tensor)>;
    fn parameters_mut(&mut self) -> Vec<&mut Tensor>;
    /// Per parameter, in the same order: whether AdamW's weight decay applies.
    fn decays(&self) -> Vec<bool>;
    /// The loss of the next micro-batch of `batch_size` items, with its graph, and the tokens
    /// it covered (the trainer's throughput counter).
    fn next_loss(&mut self, batch_size: usize) -> Result<(Tensor, u64)>;
    /// Mean loss on held-out data, at most `max_items` items (0: all).
    fn evaluate(&mut self, batch_size: usize, max_items: usize) -> Result<TaskEval>;
    /// Where the training data stands: with it, a resumed task yields the same batches.
    fn data_position(&self) -> DataPosition;
    /// Writes the trained weights (and whatever fixed buffers read them) into a checkpoint
    /// folder.
    fn save_weights(&self, dir: &Path) -> Result<()>;
}
