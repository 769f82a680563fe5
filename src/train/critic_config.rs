//! The `critic` section of a run file: stage 4, the value heads trained on the distill stage's
//! traces of the stage-1 backbone (so a run file with `critic` needs `distill`).
//!
//! ```json
//! "critic": {"out_dir": "runs/nano/critic", "horizon": 8, "gamma": 0.9, "hidden": 32,
//!            "training": {"batch_size": 64, "max_steps": 600, "lr": 0.001}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::train::TrainingConfig;
use crate::train::stage_loop::stage_loop_config;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriticStageConfig {
    /// Where the heads' checkpoints and metrics (`heads/`), the report (`critic.json`) and the
    /// calibration plot (`calibration.png`) go.
    pub out_dir: String,
    /// H: the value at t is the discounted log-likelihood of the next H tokens, per token.
    #[serde(default = "defaults::horizon")]
    pub horizon: usize,
    #[serde(default = "defaults::gamma")]
    pub gamma: f32,
    /// Hidden width of each layer's head.
    #[serde(default = "defaults::hidden")]
    pub hidden: usize,
    /// Training trace parts held in memory (their targets are computed once).
    #[serde(default = "defaults::parts")]
    pub parts: usize,
    #[serde(default)]
    pub seed: u64,
    /// The heads' loop: the keys of `training` except `data`, `tokenizer`, `out_dir`.
    pub training: Value,
}

mod defaults {
    pub fn horizon() -> usize {
        8
    }
    pub fn gamma() -> f32 {
        0.9
    }
    pub fn hidden() -> usize {
        32
    }
    pub fn parts() -> usize {
        4
    }
}

impl CriticStageConfig {
    pub fn validate(&self, file: &str) -> Result<()> {
        let err = |field: &str, detail: String| Error::Config {
            file: file.to_string(),
            field: format!("critic.{field}"),
            detail,
        };
        for (field, v) in [
            ("horizon", self.horizon),
            ("hidden", self.hidden),
            ("parts", self.parts),
        ] {
            if v == 0 {
                return Err(err(field, "must be at least 1".into()));
            }
        }
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return Err(err(
                "gamma",
                format!("must be in (0, 1], got {}", self.gamma),
            ));
        }
        self.loop_config("", file).map(|_| ())
    }

    /// The heads' loop; `traces` is the training traces' folder (the distill stage's).
    pub fn loop_config(&self, traces: &str, file: &str) -> Result<TrainingConfig> {
        stage_loop_config(
            "critic",
            &self.training,
            traces.to_string(),
            format!("{}/heads", self.out_dir),
            self.seed,
            file,
        )
    }
}
