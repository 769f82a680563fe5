//! Training checkpoints: everything a run needs to continue exactly where it stopped.
//!
//! `OUT/checkpoint/` holds `config.json` + `model.safetensors` (the backbone, loadable by every
//! other command and by transformers when the CRSM additions are off), `tokenizer.json`,
//! `optimizer.safetensors` (AdamW's moments, `m.<name>` and `v.<name>`) and `trainer_state.json`
//! (step, optimizer step count, tokens read, data position, elapsed time, loss scale). The set is written
//! into `checkpoint.partial/` and swapped in with renames, so a crash at any moment leaves either
//! the previous checkpoint or the new one (in `checkpoint.old/` for the instant of the swap,
//! which `latest_checkpoint` also looks at).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::DataPosition;
use crate::error::{Error, Result};
use crate::io::{HostTensor, TensorMap, load_safetensors_file, save_safetensors, write_atomic};
use crate::model::Backbone;
use crate::tensor::Tensor;
use crate::train::AdamW;
use crate::train::loss_scale::LossScaleState;

pub const CHECKPOINT_DIR: &str = "checkpoint";
const PARTIAL_DIR: &str = "checkpoint.partial";
const OLD_DIR: &str = "checkpoint.old";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "trainer_state.json";
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
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes the checkpoint of `out_dir` (replacing the previous one as described above).
pub fn save_checkpoint(
    out_dir: &Path,
    model: &Backbone,
    optimizer: &AdamW,
    state: &TrainerState,
    tokenizer: &Path,
) -> Result<()> {
    let partial = out_dir.join(PARTIAL_DIR);
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| io_err(&partial, e))?;
    }
    fs::create_dir_all(&partial).map_err(|e| io_err(&partial, e))?;
    model.save(&partial)?;
    let tokenizer_bytes = fs::read(tokenizer).map_err(|e| io_err(tokenizer, e))?;
    write_atomic(&partial.join(TOKENIZER_FILE), &tokenizer_bytes)?;
    let mut moments = TensorMap::new();
    for ((name, _), (m, v)) in model
        .named_parameters()
        .into_iter()
        .zip(optimizer.moments())
    {
        moments.insert(format!("m.{name}"), HostTensor::from_tensor(m)?);
        moments.insert(format!("v.{name}"), HostTensor::from_tensor(v)?);
    }
    save_safetensors(&partial.join(OPTIMIZER_FILE), &moments)?;
    let state_text = serde_json::to_string_pretty(state).map_err(|e| Error::Config {
        file: STATE_FILE.into(),
        field: String::new(),
        detail: e.to_string(),
    })?;
    write_atomic(&partial.join(STATE_FILE), state_text.as_bytes())?;

    let (current, old) = (out_dir.join(CHECKPOINT_DIR), out_dir.join(OLD_DIR));
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
    }
    if current.exists() {
        fs::rename(&current, &old).map_err(|e| io_err(&current, e))?;
    }
    fs::rename(&partial, &current).map_err(|e| io_err(&partial, e))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
    }
    Ok(())
}

/// The newest complete checkpoint under `out_dir`, if any.
pub fn latest_checkpoint(out_dir: &Path) -> Option<PathBuf> {
    [CHECKPOINT_DIR, OLD_DIR]
        .iter()
        .map(|d| out_dir.join(d))
        .find(|d| d.join(STATE_FILE).is_file())
}

/// A checkpoint read back: the model, the optimizer's moments (in `named_parameters` order) and
/// the counters. Every moment must be present with its parameter's shape.
pub struct LoadedCheckpoint {
    pub model: Backbone,
    pub moments: Vec<(Tensor, Tensor)>,
    pub state: TrainerState,
}

pub fn load_checkpoint(dir: &Path, device: &crate::Device) -> Result<LoadedCheckpoint> {
    let model = Backbone::load(dir, device)?;
    let state_path = dir.join(STATE_FILE);
    let state: TrainerState = crate::io::read_json(&state_path)?;
    let opt_path = dir.join(OPTIMIZER_FILE);
    let mut map = load_safetensors_file(&opt_path)?;
    let file = opt_path.display().to_string();
    let mut moments = Vec::new();
    // Before AdamW's first step (every step so far skipped) there are no moments to restore.
    let params = if state.optimizer_steps == 0 && map.is_empty() {
        Vec::new()
    } else {
        model.named_parameters()
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
    Ok(LoadedCheckpoint {
        model,
        moments,
        state,
    })
}
