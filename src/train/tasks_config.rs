//! The `tasks` section of a run file: a reasoning run (the evidence study) trains on problems of
//! one task family instead of a text corpus. `full` then starts with a data stage that writes the
//! problem files (held-out splits first, then `val` and `train` drawn disjoint from them), a
//! byte-level BPE tokenizer trained on the training problems and SFT shards (loss on the answer
//! only, `data::corpus`); and stage 4 trains the critic on task reward: the verifier's verdict
//! on the stage-1 model's own sampled completions (`train::task_rewards`), on problems of the
//! `critic` split, which the backbone never trained on: the value the planner needs is that of
//! new problems, and a backbone answers the problems it was trained on better (it remembers some).
//!
//! ```json
//! "tasks": {"family": "pathstar", "dir": "runs/pathstar/tasks",
//!           "train": {"n": 20000, "seed": 1, "params": {"d": 2, "l": 5, "n": 50}},
//!           "val": {"n": 500, "seed": 2, "params": {"d": 2, "l": 5, "n": 50}},
//!           "held_out": [{"name": "d3", "n": 1000, "seed": 3, "params": {"d": 3}}],
//!           "critic": {"n": 4096, "seed": 6, "params": {"d": 2, "l": 5, "n": 50}},
//!           "critic_problems": 4096, "critic_val_problems": 256, "max_answer_tokens": 48}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One split: `n` problems from `seed` with the generator's `params` (as `tasks make --param`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSplit {
    pub n: usize,
    pub seed: u64,
    /// Generator parameters, numbers or strings (`{"d": 2, "l": 5}`).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

impl TaskSplit {
    /// The parameters as `tasks::make` takes them (`--param k=v`).
    pub fn make_params(&self) -> BTreeMap<String, String> {
        self.params
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// A held-out split, written to `<dir>/held-out-<name>.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldOutSplit {
    pub name: String,
    pub n: usize,
    pub seed: u64,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

impl HeldOutSplit {
    pub fn split(&self) -> TaskSplit {
        TaskSplit {
            n: self.n,
            seed: self.seed,
            params: self.params.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksConfig {
    pub family: String,
    /// Where the problem files go (`train.jsonl`, `val.jsonl`, `held-out-<name>.jsonl`).
    pub dir: String,
    pub train: TaskSplit,
    /// Problems from the training distribution kept out of training: the SFT validation shard
    /// and the critic's held-out report.
    pub val: TaskSplit,
    #[serde(default)]
    pub held_out: Vec<HeldOutSplit>,
    /// Problems of the training distribution for the critic's reward targets, drawn last (never
    /// in `train`, `val` or a held-out split): `critic.jsonl`. Without it the critic answers
    /// training problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critic: Option<TaskSplit>,
    /// How many problems of `critic` (or of `train` without it) the stage-1 model answers
    /// (sampled) for the critic's reward targets.
    #[serde(default = "defaults::critic_problems")]
    pub critic_problems: usize,
    /// `val` problems answered for the critic's held-out report.
    #[serde(default = "defaults::critic_val_problems")]
    pub critic_val_problems: usize,
    /// The longest completion sampled or evaluated (tokens; EOS ends one sooner).
    #[serde(default = "defaults::max_answer_tokens")]
    pub max_answer_tokens: usize,
    /// Sampling temperature of the critic's completions (1: the model's own distribution).
    #[serde(default = "defaults::temperature")]
    pub temperature: f32,
}

mod defaults {
    pub fn critic_problems() -> usize {
        1024
    }
    pub fn critic_val_problems() -> usize {
        256
    }
    pub fn max_answer_tokens() -> usize {
        48
    }
    pub fn temperature() -> f32 {
        1.0
    }
}

impl TasksConfig {
    pub fn validate(&self, file: &str) -> Result<()> {
        let err = |field: &str, detail: String| Error::Config {
            file: file.to_string(),
            field: format!("tasks.{field}"),
            detail,
        };
        for (field, v) in [
            ("train.n", self.train.n),
            ("val.n", self.val.n),
            ("critic_problems", self.critic_problems),
            ("critic_val_problems", self.critic_val_problems),
            ("max_answer_tokens", self.max_answer_tokens),
        ] {
            if v == 0 {
                return Err(err(field, "must be at least 1".into()));
            }
        }
        let (source, n) = match &self.critic {
            Some(c) => ("critic.n", c.n),
            None => ("train.n", self.train.n),
        };
        if self.critic_problems > n {
            return Err(err(
                "critic_problems",
                format!("{} exceeds {source} {n}", self.critic_problems),
            ));
        }
        if self.critic_val_problems > self.val.n {
            return Err(err(
                "critic_val_problems",
                format!("{} exceeds val.n {}", self.critic_val_problems, self.val.n),
            ));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(err(
                "temperature",
                format!("{} must be > 0", self.temperature),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, h) in self.held_out.iter().enumerate() {
            let ok = !h.name.is_empty()
                && h.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok || !names.insert(h.name.as_str()) {
                return Err(err(
                    &format!("held_out[{i}].name"),
                    format!(
                        "{:?} must be a distinct name of letters, digits, - or _",
                        h.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// What the data stage's files depend on (not the critic's settings, which only stage 4
    /// reads): the family, the folder and the splits.
    pub fn data_key(&self) -> serde_json::Value {
        let mut key = serde_json::json!({
            "family": self.family,
            "dir": self.dir,
            "train": self.train,
            "val": self.val,
            "held_out": self.held_out,
        });
        // Absent from the key without it, so runs made before the split stay current.
        if let Some(c) = &self.critic {
            key["critic"] = serde_json::json!(c);
        }
        key
    }

    pub fn train_file(&self) -> String {
        format!("{}/train.jsonl", self.dir)
    }

    pub fn val_file(&self) -> String {
        format!("{}/val.jsonl", self.dir)
    }

    /// The problems the critic's reward targets come from: `critic.jsonl`, or `train.jsonl`
    /// without a `critic` split.
    pub fn critic_file(&self) -> String {
        match self.critic {
            Some(_) => format!("{}/critic.jsonl", self.dir),
            None => self.train_file(),
        }
    }

    pub fn held_out_file(&self, name: &str) -> String {
        format!("{}/held-out-{name}.jsonl", self.dir)
    }
}
