//! The `assemble` section of a run file: stage 3, which gathers the stages' outputs into one
//! checkpoint folder (`latent::checkpoint`). Unknown keys are errors naming the key.
//!
//! ```json
//! "assemble": {"out_dir": "runs/nano/crsm"}
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssembleConfig {
    /// The assembled folder: `config.json`, `model.safetensors` (the HF backbone),
    /// `crsm.safetensors` (everything else) and `stage.json`.
    pub out_dir: String,
}

impl AssembleConfig {
    pub fn validate(&self, file: &str) -> Result<()> {
        if self.out_dir.trim().is_empty() {
            return Err(Error::Config {
                file: file.into(),
                field: "assemble.out_dir".into(),
                detail: "must name a folder".into(),
            });
        }
        Ok(())
    }
}
