//! The `distill` section of a run file: stage 2, the latent dynamics distilled from the frozen
//! backbone of stage 1 (`training.out_dir/checkpoint`). Unknown keys are errors naming the key.
//!
//! ```json
//! "distill": {
//!   "out_dir": "runs/nano/distill",
//!   "windows": 256, "val_windows": 32, "window_len": 64,
//!   "unroll": 5,
//!   "training": {"batch_size": 64, "max_steps": 1500, "lr": 0.002, ...},
//!   "broadcaster": {"pairs_per_window": 2, "top_k": 8, "rank": 32, "channel_rank": 8,
//!                   "training": {"batch_size": 32, "max_steps": 400, ...}}
//! }
//! ```
//!
//! `broadcaster` is optional: without it no state pairs are collected and no broadcaster is
//! trained (its loop writes to `out_dir/broadcaster`, its weights to
//! `out_dir/broadcaster.safetensors`).
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
    /// The delta broadcaster and the state pairs it learns from.
    #[serde(default)]
    pub broadcaster: Option<BroadcasterSection>,
}

/// `distill.broadcaster`: the counterfactual state pairs collected with the traces and the
/// broadcaster's sizes and training loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcasterSection {
    /// Pairs per trace window (each stores two full SSM states of every layer).
    #[serde(default = "defaults::pairs_per_window")]
    pub pairs_per_window: usize,
    /// The counterfactual token comes from the model's top-k at the pair's position.
    #[serde(default = "defaults::top_k")]
    pub top_k: usize,
    /// The rank of the latent change it reads, and over the channels E.
    #[serde(default = "defaults::rank")]
    pub rank: usize,
    #[serde(default = "defaults::channel_rank")]
    pub channel_rank: usize,
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
    pub fn pairs_per_window() -> usize {
        2
    }
    pub fn top_k() -> usize {
        8
    }
    pub fn rank() -> usize {
        32
    }
    pub fn channel_rank() -> usize {
        8
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
        if let Some(b) = &self.broadcaster {
            for (field, v) in [
                ("pairs_per_window", b.pairs_per_window),
                ("top_k", b.top_k),
                ("rank", b.rank),
                ("channel_rank", b.channel_rank),
            ] {
                if v == 0 {
                    return Err(err(
                        &format!("broadcaster.{field}"),
                        "must be at least 1".into(),
                    ));
                }
            }
            let room = crate::latent::state_pairs::max_pairs(self.window_len);
            if b.pairs_per_window > room {
                return Err(err(
                    "broadcaster.pairs_per_window",
                    format!(
                        "{} pairs do not fit windows of {} tokens (at most {room})",
                        b.pairs_per_window, self.window_len
                    ),
                ));
            }
            self.broadcaster_loop_config(file)?;
        }
        self.loop_config(file).map(|_| ())
    }

    /// State pairs per window: 0 without a broadcaster.
    pub fn pairs_per_window(&self) -> usize {
        self.broadcaster.as_ref().map_or(0, |b| b.pairs_per_window)
    }

    /// The broadcaster's training loop: data = the training traces (their pairs), out_dir =
    /// `out_dir/broadcaster`. None without a `broadcaster` section.
    pub fn broadcaster_loop_config(&self, file: &str) -> Result<Option<TrainingConfig>> {
        let Some(b) = &self.broadcaster else {
            return Ok(None);
        };
        stage_loop_config(
            "distill.broadcaster",
            &b.training,
            self.traces_dir("train"),
            format!("{}/broadcaster", self.out_dir),
            self.seed.wrapping_add(7),
            file,
        )
        .map(Some)
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
