//! A stage's manifest, `<out_dir>/stage.json`: the SHA-256 of what the stage read (its config
//! section, the files it started from) and of the files it wrote, plus its headline figures.
//! `crsm-train full` skips a stage whose manifest records the inputs it would read now and
//! whose outputs still hash as recorded; anything else runs the stage again. The manifest is
//! written atomically after the outputs, so a stage cut short has none (or its previous one,
//! whose inputs or outputs then no longer match). A stage that starts records its inputs first
//! (`<out_dir>/stage.pending.json`): `--resume` continues a checkpoint only when the inputs it
//! was made from are the ones the stage reads now, never a run of an earlier backbone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::data::sha256_file;
use crate::error::{Error, Result};
use crate::io::write_atomic;

pub const MANIFEST_FILE: &str = "stage.json";
/// The inputs of a stage that started and has not finished (see the module doc).
pub const PENDING_FILE: &str = "stage.pending.json";

/// What a stage read, by name: hex SHA-256 of a config section or a file.
pub type Inputs = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageManifest {
    pub stage: String,
    pub inputs: Inputs,
    /// Output file path (as written) -> hex SHA-256 of its bytes.
    pub outputs: BTreeMap<String, String>,
    /// The stage's headline figures (what `full` prints when it skips the stage).
    pub report: Value,
}

/// Hex SHA-256 of a value's JSON text (a config section: `serde_json` writes maps in key order,
/// so equal sections hash equal).
pub fn json_sha256<T: Serialize>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl StageManifest {
    /// The manifest in `out_dir`, if there is a readable one.
    pub fn read(out_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(out_dir.join(MANIFEST_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The manifest of `stage` in `out_dir` when it records exactly `inputs` and every output
    /// still has its recorded hash; otherwise None (the stage must run).
    pub fn current(out_dir: &Path, stage: &str, inputs: &Inputs) -> Option<Self> {
        let m = Self::read(out_dir)?;
        let outputs_intact = m
            .outputs
            .iter()
            .all(|(path, hash)| sha256_file(Path::new(path)).ok().as_ref() == Some(hash));
        (m.stage == stage && &m.inputs == inputs && outputs_intact).then_some(m)
    }

    /// Hashes `outputs` and writes the manifest into `out_dir` (atomically, last).
    pub fn write(
        out_dir: &Path,
        stage: &str,
        inputs: Inputs,
        outputs: &[PathBuf],
        report: Value,
    ) -> Result<Self> {
        let mut hashed = BTreeMap::new();
        for path in outputs {
            hashed.insert(path.display().to_string(), sha256_file(path)?);
        }
        let m = StageManifest {
            stage: stage.into(),
            inputs,
            outputs: hashed,
            report,
        };
        let text = serde_json::to_string_pretty(&m).map_err(|e| Error::Config {
            file: out_dir.join(MANIFEST_FILE).display().to_string(),
            field: String::new(),
            detail: e.to_string(),
        })?;
        write_atomic(&out_dir.join(MANIFEST_FILE), text.as_bytes())?;
        Ok(m)
    }

    /// Records that `stage` starts in `out_dir` from `inputs` (atomically, before it writes
    /// anything else), so a later `--resume` can tell whether its checkpoints are of these inputs.
    pub fn begin(out_dir: &Path, stage: &str, inputs: &Inputs) -> Result<()> {
        std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
            path: out_dir.display().to_string(),
            source,
        })?;
        let pending = Pending {
            stage: stage.into(),
            inputs: inputs.clone(),
        };
        let text = serde_json::to_string_pretty(&pending).unwrap_or_default();
        write_atomic(&out_dir.join(PENDING_FILE), text.as_bytes())
    }

    /// Whether the checkpoints of `stage` in `out_dir` were made from exactly `inputs` (its
    /// `begin` recorded them); false when nothing was recorded.
    pub fn resumable(out_dir: &Path, stage: &str, inputs: &Inputs) -> bool {
        std::fs::read_to_string(out_dir.join(PENDING_FILE))
            .ok()
            .and_then(|text| serde_json::from_str::<Pending>(&text).ok())
            .is_some_and(|p| p.stage == stage && &p.inputs == inputs)
    }
}

/// `stage.pending.json`: what a started stage reads.
#[derive(Serialize, Deserialize)]
struct Pending {
    stage: String,
    inputs: Inputs,
}
