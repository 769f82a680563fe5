//! The run's record, `metrics.json`: one entry per optimizer step, per evaluation and per skipped
//! step, rewritten atomically as the run goes so a crash never leaves half a file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::write_atomic;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based: the number of optimizer steps taken including this one.
    pub step: usize,
    /// Mean next-token loss over the step's micro-batches, nats per token.
    pub loss: f32,
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Training tokens read so far (inputs, all micro-batches).
    pub tokens: u64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    /// The loss scale this step's backward pass was seeded with (f16 runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: usize,
    /// Mean validation loss, nats per token.
    pub loss: f64,
    /// Bits per UTF-8 byte of validation text: comparable across tokenizers. NaN where the task
    /// predicts no text (the dynamics, the critic), written as JSON `null` and read back as NaN.
    #[serde(deserialize_with = "nan_from_null")]
    pub bpb: f64,
    /// Validation tokens scored.
    pub tokens: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkipRecord {
    pub step: usize,
    pub reason: String,
    /// f16 runs: the loss scale after this step (halved when its gradients overflowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub steps: Vec<StepRecord>,
    pub evals: Vec<EvalRecord>,
    pub skipped: Vec<SkipRecord>,
}

impl Metrics {
    pub fn load(path: &Path) -> Result<Self> {
        crate::io::read_json(path)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Config {
            file: path.display().to_string(),
            field: String::new(),
            detail: e.to_string(),
        })?;
        write_atomic(path, text.as_bytes())
    }

    /// Drops records after `step`: what a resumed run keeps of the log it continues.
    pub fn truncate_after(&mut self, step: usize) {
        self.steps.retain(|r| r.step <= step);
        self.evals.retain(|r| r.step <= step);
        self.skipped.retain(|r| r.step <= step);
    }

    pub fn last_eval(&self) -> Option<&EvalRecord> {
        self.evals.last()
    }
}

/// JSON has no NaN: serde_json writes it as `null`; read `null` back as NaN.
fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
