//! Training checkpoints: everything a run needs to continue exactly where it stopped.
//!
//! `OUT/checkpoint/` holds the task's weights (`Task::save_weights`: for the backbone
//! `config.json` + `model.safetensors`, loadable by every other command and by transformers when
//! the CRSM additions are off; for the dynamics `dynamics.safetensors`), `tokenizer.json` where
//! the task reads text, `optimizer.safetensors` (AdamW's moments, `m.<name>` and `v.<name>`, by
//! the task's parameter names) and `trainer_state.json` (step, optimizer step count, tokens read,
//! data position, elapsed time, loss scale). How a new
//! set replaces the last one, so that a crash at any instant leaves a complete checkpoint, is
//! `rotation.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::DataPosition;
use crate::error::{Error, Result};
use crate::io::{HostTensor, TensorMap, load_safetensors_file, save_safetensors, write_atomic};
use crate::tensor::Tensor;
use crate::train::AdamW;
use crate::train::drift::RunRecord;
use crate::train::loss_scale::LossScaleState;
use crate::train::rotation;
use crate::train::task::Task;

pub use super::rotation::CHECKPOINT_DIR;
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "trainer_state.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// The loop's counters at a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps completed (skipped steps included: they consumed their batches).
    pub step: usize,
    /// AdamW's own count (skipped steps excluded): its bias correction depends on it.
    pub optimizer_steps: u32,
    pub tokens: u64,
    pub elapsed_s: f64,
    pub data: DataPosition,
    /// The dynamic loss scale and its good-step count (f16 runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<LossScaleState>,
    /// What the run trains on and how, checked on resume (`drift.rs`); absent in checkpoints
    /// from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRecord>,
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes the checkpoint of `out_dir` for `state.step`, replacing the previous one by the
/// rotation of `rotation.rs`. Returns the checkpoint's folder.
pub fn save_checkpoint(
    out_dir: &Path,
    task: &dyn Task,
    optimizer: &AdamW,
    state: &TrainerState,
    tokenizer: Option<&Path>,
) -> Result<PathBuf> {
    rotation::commit(out_dir, state.step, |dir| {
        write_contents(dir, task, optimizer, state, tokenizer)
    })
}

fn write_contents(
    dir: &Path,
    task: &dyn Task,
    optimizer: &AdamW,
    state: &TrainerState,
    tokenizer: Option<&Path>,
) -> Result<()> {
    task.save_weights(dir)?;
    if let Some(tokenizer) = tokenizer {
        let tokenizer_bytes = fs::read(tokenizer).map_err(|e| io_err(tokenizer, e))?;
        write_atomic(&dir.join(TOKENIZER_FILE), &tokenizer_bytes)?;
    }
    let mut moments = TensorMap::new();
    for ((name, _), (m, v)) in task.named_parameters().into_iter().zip(optimizer.moments()) {
        moments.insert(format!("m.{name}"), HostTensor::from_tensor(m)?);
        moments.insert(format!("v.{name}"), HostTensor::from_tensor(v)?);
    }
    save_safetensors(&dir.join(OPTIMIZER_FILE), &moments)?;
    let state_text = serde_json::to_string_pretty(state).map_err(|e| Error::Config {
        file: STATE_FILE.into(),
        field: String::new(),
        detail: e.to_string(),
    })?;
    write_atomic(&dir.join(STATE_FILE), state_text.as_bytes())
}

/// The newest complete checkpoint under `out_dir` (in whichever slot it is), if any.
pub fn latest_checkpoint(out_dir: &Path) -> Option<PathBuf> {
    rotation::newest_complete(out_dir).map(|(dir, _)| dir)
}

/// The optimizer's side of a checkpoint read back: the moments (in the order of `params`, the
/// task's `named_parameters`, whose weights the task loaded itself) and the counters. Every moment
/// must be present with its parameter's shape.
pub struct LoadedCheckpoint {
    pub moments: Vec<(Tensor, Tensor)>,
    pub state: TrainerState,
}

pub fn load_checkpoint(
    dir: &Path,
    params: &[(String, &Tensor)],
    device: &crate::Device,
) -> Result<LoadedCheckpoint> {
    let state_path = dir.join(STATE_FILE);
    let state: TrainerState = crate::io::read_json(&state_path)?;
    let opt_path = dir.join(OPTIMIZER_FILE);
    let mut map = load_safetensors_file(&opt_path)?;
    let file = opt_path.display().to_string();
    let mut moments = Vec::new();
    // Before AdamW's first step (every step so far skipped) there are no moments to restore.
    let params = if state.optimizer_steps == 0 && map.is_empty() {
        &[][..]
    } else {
        params
    };
    for (name, p) in params {
        let mut take = |key: String| -> Result<Tensor> {
            let t = map.remove(&key).ok_or_else(|| Error::Checkpoint {
                file: file.clone(),
                tensor: key.clone(),
                detail: "missing".into(),
            })?;
            if t.shape != p.shape() {
                return Err(Error::Checkpoint {
                    file: file.clone(),
                    tensor: key,
                    detail: format!("shape {:?}, but the parameter is {:?}", t.shape, p.shape()),
                });
            }
            t.to_tensor(device)
        };
        let m = take(format!("m.{name}"))?;
        let v = take(format!("v.{name}"))?;
        moments.push((m, v));
    }
    if let Some(extra) = map.keys().next() {
        return Err(Error::Checkpoint {
            file,
            tensor: extra.clone(),
            detail: "not a moment of any parameter of this model".into(),
        });
    }
    Ok(LoadedCheckpoint { moments, state })
}
