//! What a resumed run must share with the run it continues. A checkpoint records the tokenizer's
//! hash, a fingerprint of the shards and the training section it was made with (`RunRecord`, in
//! `trainer_state.json`). Resuming with another tokenizer or other shards would silently mix
//! two datasets in one run: refused. A changed batch, learning rate, seed or other setting that
//! shapes the trajectory is allowed (lowering the rate of a diverging run is legitimate) but
//! named in a warning, since the run is no longer the one it began as.
//!
//! The shards' fingerprint hashes their headers (token count, text bytes, tokenizer hash, loss
//! spans), not every token: a resume never re-reads a corpus of gigabytes, and shards prepared
//! from another corpus differ there.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::ShardHeader;
use crate::error::{Error, Result};
use crate::train::TrainingConfig;

/// The `training` fields whose change on resume is worth a warning. Not listed: where things are
/// (paths, device), how often to evaluate or save, and the time budget.
const WATCHED: [&str; 15] = [
    "batch_size",
    "seq_len",
    "grad_accum",
    "max_steps",
    "lr",
    "min_lr",
    "warmup_steps",
    "weight_decay",
    "beta1",
    "beta2",
    "eps",
    "grad_clip",
    "seed",
    "precision",
    "loss_scale_init",
];

/// What a run trains on and how (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// SHA-256 of tokenizer.json.
    pub tokenizer_sha256: String,
    /// SHA-256 of the train and val shard headers.
    pub shards_sha256: String,
    /// The run config's training section.
    pub training: serde_json::Value,
}

impl RunRecord {
    pub fn new(
        tokenizer_sha256: String,
        train: &ShardHeader,
        val: &ShardHeader,
        training: &TrainingConfig,
    ) -> Result<Self> {
        let mut hasher = Sha256::new();
        hasher.update(to_json(train)?.to_string());
        hasher.update("\n");
        hasher.update(to_json(val)?.to_string());
        let shards_sha256 = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(RunRecord {
            tokenizer_sha256,
            shards_sha256,
            training: to_json(training)?,
        })
    }

    /// Checks that `self` (the resumed run) may continue `saved` (recorded in the checkpoint
    /// file `file`); returns one warning per changed watched field.
    pub fn check_resume_of(&self, saved: &RunRecord, file: &str) -> Result<Vec<String>> {
        let refuse = |field: &str, what: &str, was: &str, now: &str| Error::Config {
            file: file.to_string(),
            field: field.into(),
            detail: format!(
                "the run was trained on {what} {was}, this config gives {now}; resuming would mix \
                 two datasets in one run (start a new run instead)"
            ),
        };
        if saved.tokenizer_sha256 != self.tokenizer_sha256 {
            return Err(refuse(
                "training.tokenizer",
                "the tokenizer of hash",
                &saved.tokenizer_sha256,
                &self.tokenizer_sha256,
            ));
        }
        if saved.shards_sha256 != self.shards_sha256 {
            return Err(refuse(
                "training.data",
                "the shards of fingerprint",
                &saved.shards_sha256,
                &self.shards_sha256,
            ));
        }
        let null = serde_json::Value::Null;
        Ok(WATCHED
            .iter()
            .filter_map(|key| {
                let was = saved.training.get(key).unwrap_or(&null);
                let now = self.training.get(key).unwrap_or(&null);
                (was != now).then(|| format!("training.{key} {was} -> {now}"))
            })
            .collect())
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::Config {
        file: "the run record".into(),
        field: String::new(),
        detail: e.to_string(),
    })
}
