//! The `distill` section of a run file: stage 2, the latent dynamics distilled from the frozen
//! backbone of stage 1 (`training.out_dir/checkpoint`). Unknown keys are errors naming the key.
//!
//! ```json
//! "distill": {
//!   "out_dir": "runs/nano/distill",
//!   "windows": 256, "val_windows": 32, "window_len": 64,
//!   "unroll": 5,
//!   "training": {"batch_size": 64, "max_steps": 1500, "lr": 0.002, ...}
//! }
//! ```
//!
//! `training` takes the keys of the run's `training` section except `data`, `tokenizer` and
//! `out_dir`, which the stage sets itself (its traces and `out_dir/dynamics`); `seq_len` is
//! unused. `batch_size` counts unrolled samples.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::train::TrainingConfig;
use crate::train::stage_loop::stage_loop_config;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    /// Where the traces (`traces/train`, `traces/val`), the dynamics' checkpoints and metrics
    /// (`dynamics/`) and the fit report (`fit.json`) go.
    pub out_dir: String,
    /// Training windows of `window_len` tokens from the train shard (seeded positions).
    pub windows: usize,
    /// Held-out windows from the val shard, for the fit report and the evaluations.
    pub val_windows: usize,
    pub window_len: usize,
    /// Windows per trace part: a part is what the dynamics' data stream holds in memory.
    #[serde(default = "defaults::windows_per_part")]
    pub windows_per_part: usize,
    /// Windows per forward pass while collecting traces.
    #[serde(default = "defaults::trace_batch")]
    pub trace_batch: usize,
    /// Open-loop steps of the training loss (MuZero unrolls 5).
    #[serde(default = "defaults::unroll")]
    pub unroll: usize,
    /// Seeds the window positions and the dynamics' init.
    #[serde(default)]
    pub seed: u64,
    /// The dynamics' training loop (see the module doc).
    pub training: Value,
}

mod defaults {
    pub fn windows_per_part() -> usize {
        64
    }
    pub fn trace_batch() -> usize {
        32
    }
    pub fn unroll() -> usize {
        5
    }
}

impl DistillConfig {
    /// Rejects settings the stage cannot use, naming the field.
    pub fn validate(&self, file: &str) -> Result<()> {
        let err = |field: &str, detail: String| Error::Config {
            file: file.to_string(),
            field: format!("distill.{field}"),
            detail,
        };
        for (field, v) in [
            ("windows", self.windows),
            ("val_windows", self.val_windows),
            ("windows_per_part", self.windows_per_part),
            ("trace_batch", self.trace_batch),
            ("unroll", self.unroll),
        ] {
            if v == 0 {
                return Err(err(field, "must be at least 1".into()));
            }
        }
        if self.window_len <= self.unroll + 1 {
            return Err(err(
                "window_len",
                format!(
                    "{} must exceed unroll + 1 = {}",
                    self.window_len,
                    self.unroll + 1
                ),
            ));
        }
        self.loop_config(file).map(|_| ())
    }

    pub fn traces_dir(&self, split: &str) -> String {
        format!("{}/traces/{split}", self.out_dir)
    }

    /// The dynamics' training loop as a `TrainingConfig` (`stage_loop.rs`): data = the training
    /// traces, out_dir = `out_dir/dynamics`.
    pub fn loop_config(&self, file: &str) -> Result<TrainingConfig> {
        stage_loop_config(
            "distill",
            &self.training,
            self.traces_dir("train"),
            format!("{}/dynamics", self.out_dir),
            self.seed,
            file,
        )
    }
}
