//! What the later stages read from stage 1, and what their runs record: the newest complete
//! checkpoint in `training.out_dir` with the hash of its weights (the source traces are tied
//! to), and the drift record of a run over traces.

use std::path::{Path, PathBuf};

use crate::Device;
use crate::data::sha256_file;
use crate::error::{Error, Result};
use crate::model::Backbone;
use crate::train::checkpoint::latest_checkpoint;
use crate::train::drift::RunRecord;
use crate::train::{RunConfig, TrainingConfig};

/// The stage-1 checkpoint: its folder, the backbone and the SHA-256 of its weights file.
pub struct StageSource {
    pub dir: PathBuf,
    pub model: Backbone,
    pub hash: String,
}

/// Loads the stage-1 checkpoint of `config` (from `file`); without one, an error naming
/// `training.out_dir` and `what_first`, the command(s) that make it.
pub fn stage1_source(
    config: &RunConfig,
    file: &str,
    device: &Device,
    what_first: &str,
) -> Result<StageSource> {
    let out_dir = &config.training.out_dir;
    let dir = latest_checkpoint(Path::new(out_dir)).ok_or_else(|| Error::Config {
        file: file.into(),
        field: "training.out_dir".into(),
        detail: format!("{out_dir} holds no stage-1 checkpoint; {what_first}"),
    })?;
    Ok(StageSource {
        model: Backbone::load(&dir, device)?,
        hash: sha256_file(&dir.join("model.safetensors"))?,
        dir,
    })
}

/// The drift record of a run over the traces in `traces`: the tokenizer's hash, the hash of the
/// traces' header, and the loop's settings (`stage.training` names it in errors).
pub fn traces_record(
    tokenizer_hash: String,
    traces: &Path,
    training: &TrainingConfig,
    stage: &str,
    file: &str,
) -> Result<RunRecord> {
    Ok(RunRecord {
        tokenizer_sha256: tokenizer_hash,
        shards_sha256: sha256_file(&traces.join("traces.json"))?,
        training: serde_json::to_value(training).map_err(|e| Error::Config {
            file: file.into(),
            field: format!("{stage}.training"),
            detail: e.to_string(),
        })?,
    })
}
