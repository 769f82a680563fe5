//! A run's configuration file (`configs/*.json`): a `model` section (an HF-style `config.json`
//! body, see `CrsmConfig`) and a `training` section (`TrainingConfig`). Unknown keys in either are
//! errors naming the key, so a typo never silently trains with a default.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::CrsmConfig;
use crate::train::assemble_config::AssembleConfig;
use crate::train::critic_config::CriticStageConfig;
use crate::train::distill_config::DistillConfig;
use crate::train::tasks_config::TasksConfig;

/// Everything about a training run except the model's shape. Paths are relative to the
/// directory the command runs in. Defaults are what the nano config would use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Prepared token shards (`crsm-train prepare`): `train.bin/json` and `val.bin/json`.
    pub data: String,
    /// The tokenizer the shards were made with; its hash must match theirs.
    pub tokenizer: String,
    /// Where checkpoints, `metrics.json` and the loss curve go.
    pub out_dir: String,
    /// Sequences per micro-batch.
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    /// Tokens per sequence.
    #[serde(default = "defaults::seq_len")]
    pub seq_len: usize,
    /// Micro-batches whose gradients are summed into one optimizer step.
    #[serde(default = "defaults::one")]
    pub grad_accum: usize,
    /// Optimizer steps in the whole run (the cosine schedule ends here).
    pub max_steps: usize,
    /// Stop early (with a checkpoint and a final evaluation) after this many minutes of training;
    /// the schedule is not shortened, so a cut run simply ends at a higher learning rate.
    #[serde(default)]
    pub time_budget_minutes: Option<f64>,
    /// Peak learning rate, reached after `warmup_steps`, then cosine decay to `min_lr`.
    pub lr: f32,
    #[serde(default)]
    pub min_lr: f32,
    #[serde(default)]
    pub warmup_steps: usize,
    /// AdamW's decoupled weight decay, applied to matrices and embeddings only (not to norms,
    /// biases, A_log, D, fusion weights or adapters).
    #[serde(default = "defaults::weight_decay")]
    pub weight_decay: f32,
    #[serde(default = "defaults::beta1")]
    pub beta1: f32,
    #[serde(default = "defaults::beta2")]
    pub beta2: f32,
    #[serde(default = "defaults::eps")]
    pub eps: f32,
    /// Global gradient norm clip; 0 turns clipping off.
    #[serde(default = "defaults::grad_clip")]
    pub grad_clip: f32,
    /// Evaluate on the validation shard every this many steps (and at the end).
    #[serde(default = "defaults::eval_every")]
    pub eval_every: usize,
    /// Validation tokens per evaluation (the first ones of the shard; 0 = all of it).
    #[serde(default = "defaults::eval_tokens")]
    pub eval_tokens: usize,
    /// Write a checkpoint every this many steps (and at the end).
    #[serde(default = "defaults::checkpoint_every")]
    pub checkpoint_every: usize,
    /// Gradient checkpointing: the block applications are split into this many segments whose
    /// activations are recomputed in the backward pass instead of kept (0 = off). Memory then
    /// grows with the segment length, not the depth; each step costs one more forward.
    #[serde(default)]
    pub checkpoint_segments: usize,
    /// Seeds the model's initialisation and the data order.
    #[serde(default)]
    pub seed: u64,
    /// auto, cpu, gpu or lavapipe; the command line's `--device` overrides it.
    #[serde(default = "defaults::device")]
    pub device: String,
    /// "f32" (default) or "f16": matmul operands in f16 with f32 accumulation, f32 master weights
    /// and optimizer moments, and dynamic loss scaling (`train::loss_scale`). Needs a device with
    /// shader-f16; others refuse it with an error naming this field.
    #[serde(default)]
    pub precision: Precision,
    /// f16 only: the first loss scale (rounded down to a power of two).
    #[serde(default = "defaults::loss_scale_init")]
    pub loss_scale_init: f32,
    /// f16 only: good steps in a row after which the loss scale doubles.
    #[serde(default = "defaults::loss_scale_growth_interval")]
    pub loss_scale_growth_interval: usize,
}

/// The arithmetic of the model's matrix products in training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

mod defaults {
    pub fn batch_size() -> usize {
        8
    }
    pub fn seq_len() -> usize {
        256
    }
    pub fn one() -> usize {
        1
    }
    pub fn weight_decay() -> f32 {
        0.1
    }
    pub fn beta1() -> f32 {
        0.9
    }
    pub fn beta2() -> f32 {
        0.95
    }
    pub fn eps() -> f32 {
        1e-8
    }
    pub fn grad_clip() -> f32 {
        1.0
    }
    pub fn eval_every() -> usize {
        100
    }
    pub fn eval_tokens() -> usize {
        65536
    }
    pub fn checkpoint_every() -> usize {
        500
    }
    pub fn device() -> String {
        "auto".into()
    }
    pub fn loss_scale_init() -> f32 {
        65536.0
    }
    pub fn loss_scale_growth_interval() -> usize {
        2000
    }
}

/// A whole run file: `{"model": {...}, "training": {...}}`, and a section per later stage
/// (`distill`, `assemble`, `critic`: `distill_config.rs`, `assemble_config.rs`,
/// `critic_config.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    pub model: CrsmConfig,
    pub training: TrainingConfig,
    pub distill: Option<DistillConfig>,
    pub assemble: Option<AssembleConfig>,
    pub critic: Option<CriticStageConfig>,
    /// A reasoning run: problems of a task family instead of a text corpus.
    pub tasks: Option<TasksConfig>,
}

impl RunConfig {
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let text = crate::io::read_text(path)?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Parses and validates a run file; `file` names it in errors.
    pub fn from_json_str(text: &str, file: &str) -> Result<Self> {
        let err = |field: &str, detail: String| Error::Config {
            file: file.to_string(),
            field: field.to_string(),
            detail,
        };
        let mut map = crate::io::json_object(text, file, " with `model` and `training` sections")?;
        let model = map
            .remove("model")
            .ok_or_else(|| err("model", "missing section".into()))?;
        let training = map
            .remove("training")
            .ok_or_else(|| err("training", "missing section".into()))?;
        let distill = map.remove("distill");
        let assemble = map.remove("assemble");
        let critic = map.remove("critic");
        let tasks = map.remove("tasks");
        if let Some(key) = map.keys().next() {
            return Err(err(
                key,
                "unknown top-level key (expected `model`, `training` and optionally `distill`, `assemble`, `critic`, `tasks`)"
                    .into(),
            ));
        }
        let model =
            CrsmConfig::from_json_str(&model.to_string(), &format!("{file} (model section)"))?;
        let training: TrainingConfig = serde_json::from_value(training.clone()).map_err(|e| {
            let key =
                wrong_key(&training).map_or("training".to_string(), |k| format!("training.{k}"));
            err(&key, e.to_string())
        })?;
        training.validate(file)?;
        let distill = match distill {
            None => None,
            Some(section) => {
                let d: DistillConfig =
                    serde_json::from_value(section).map_err(|e| err("distill", e.to_string()))?;
                d.validate(file)?;
                Some(d)
            }
        };
        let assemble = match assemble {
            None => None,
            Some(section) => {
                let a: AssembleConfig =
                    serde_json::from_value(section).map_err(|e| err("assemble", e.to_string()))?;
                a.validate(file)?;
                Some(a)
            }
        };
        let critic = match critic {
            None => None,
            Some(section) => {
                let c: CriticStageConfig =
                    serde_json::from_value(section).map_err(|e| err("critic", e.to_string()))?;
                c.validate(file)?;
                if distill.is_none() {
                    return Err(err(
                        "critic",
                        "trains on the distill stage's traces: add a `distill` section".into(),
                    ));
                }
                Some(c)
            }
        };
        let tasks = match tasks {
            None => None,
            Some(section) => {
                let t: TasksConfig =
                    serde_json::from_value(section).map_err(|e| err("tasks", e.to_string()))?;
                t.validate(file)?;
                Some(t)
            }
        };
        Ok(RunConfig {
            model,
            training,
            distill,
            assemble,
            critic,
            tasks,
        })
    }

    /// The same run with training seed `k`: `training.seed` = k, the distill and critic seeds
    /// moved by k, and every output under `<training.out_dir>-seed<k>` (an out_dir inside
    /// `training.out_dir` keeps its place there; another gets the suffix). The data, the
    /// tokenizer and a reasoning run's problems stay shared, so seeds differ only in training.
    pub fn with_training_seed(&self, k: u64) -> RunConfig {
        let mut c = self.clone();
        let base = self.training.out_dir.trim_end_matches('/').to_string();
        let moved = format!("{base}-seed{k}");
        let relocate = |dir: &str| -> String {
            match dir.strip_prefix(&base) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{moved}{rest}"),
                _ => format!("{}-seed{k}", dir.trim_end_matches('/')),
            }
        };
        c.training.seed = k;
        c.training.out_dir = moved.clone();
        if let Some(d) = &mut c.distill {
            d.seed += k;
            d.out_dir = relocate(&d.out_dir);
        }
        if let Some(a) = &mut c.assemble {
            a.out_dir = relocate(&a.out_dir);
        }
        if let Some(cr) = &mut c.critic {
            cr.seed += k;
            cr.out_dir = relocate(&cr.out_dir);
        }
        c
    }

    pub fn to_json_string(&self) -> Result<String> {
        let model: Value =
            serde_json::from_str(&self.model.to_json_string()?).map_err(|e| Error::Config {
                file: "config".into(),
                field: "model".into(),
                detail: e.to_string(),
            })?;
        let training = serde_json::to_value(&self.training).map_err(|e| Error::Config {
            file: "config".into(),
            field: "training".into(),
            detail: e.to_string(),
        })?;
        let mut whole = serde_json::json!({"model": model, "training": training});
        if let Some(d) = &self.distill {
            whole["distill"] = serde_json::to_value(d).map_err(|e| Error::Config {
                file: "config".into(),
                field: "distill".into(),
                detail: e.to_string(),
            })?;
        }
        if let Some(a) = &self.assemble {
            whole["assemble"] = serde_json::to_value(a).map_err(|e| Error::Config {
                file: "config".into(),
                field: "assemble".into(),
                detail: e.to_string(),
            })?;
        }
        if let Some(c) = &self.critic {
            whole["critic"] = serde_json::to_value(c).map_err(|e| Error::Config {
                file: "config".into(),
                field: "critic".into(),
                detail: e.to_string(),
            })?;
        }
        if let Some(t) = &self.tasks {
            whole["tasks"] = serde_json::to_value(t).map_err(|e| Error::Config {
                file: "config".into(),
                field: "tasks".into(),
                detail: e.to_string(),
            })?;
        }
        let mut text = serde_json::to_string_pretty(&whole).map_err(|e| Error::Config {
            file: "config".into(),
            field: String::new(),
            detail: e.to_string(),
        })?;
        text.push('\n');
        Ok(text)
    }
}

/// The key of a `training` section whose value has the wrong type or range: serde's error on
/// the whole section names only the section, so each key is tried alone (a lone key misses the
/// required fields, a different error from a bad value).
fn wrong_key(section: &Value) -> Option<String> {
    let map = section.as_object()?;
    map.iter().find_map(|(key, value)| {
        let alone = serde_json::json!({ key: value });
        let e = serde_json::from_value::<TrainingConfig>(alone)
            .err()?
            .to_string();
        (e.starts_with("invalid type") || e.starts_with("invalid value")).then(|| key.clone())
    })
}

impl TrainingConfig {
    /// Rejects settings no run can use, naming the field.
    pub fn validate(&self, file: &str) -> Result<()> {
        let err = |field: &str, detail: String| {
            Err(Error::Config {
                file: file.to_string(),
                field: format!("training.{field}"),
                detail,
            })
        };
        for (field, v) in [
            ("batch_size", self.batch_size),
            ("seq_len", self.seq_len),
            ("grad_accum", self.grad_accum),
            ("max_steps", self.max_steps),
            ("eval_every", self.eval_every),
            ("checkpoint_every", self.checkpoint_every),
            (
                "loss_scale_growth_interval",
                self.loss_scale_growth_interval,
            ),
        ] {
            if v == 0 {
                return err(field, "must be at least 1".into());
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err("lr", format!("must be a positive number, got {}", self.lr));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return err(
                "min_lr",
                format!("must be in [0, lr = {}], got {}", self.lr, self.min_lr),
            );
        }
        if self.warmup_steps > self.max_steps {
            return err(
                "warmup_steps",
                format!("{} exceeds max_steps {}", self.warmup_steps, self.max_steps),
            );
        }
        for (field, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return err(field, format!("must be in [0, 1), got {v}"));
            }
        }
        for (field, v) in [
            ("weight_decay", self.weight_decay),
            ("grad_clip", self.grad_clip),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return err(field, format!("must be a number >= 0, got {v}"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return err(
                "eps",
                format!("must be a positive number, got {}", self.eps),
            );
        }
        if !(self.loss_scale_init.is_finite() && self.loss_scale_init >= 1.0) {
            return err(
                "loss_scale_init",
                format!("must be a number >= 1, got {}", self.loss_scale_init),
            );
        }
        if let Some(m) = self.time_budget_minutes
            && !(m.is_finite() && m > 0.0)
        {
            return err(
                "time_budget_minutes",
                format!("must be a positive number of minutes, got {m}"),
            );
        }
        Ok(())
    }
}
