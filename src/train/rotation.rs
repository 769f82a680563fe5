//! Checkpoint rotation: how a new checkpoint replaces the last one so that a complete checkpoint
//! exists at every instant, whatever step of a save a crash (or a second crash, or a full disk)
//! interrupts.
//!
//! A checkpoint lives in one of three slots under the run's folder: `checkpoint/` (where every
//! other command looks), `checkpoint.partial/` (being written) and `checkpoint.old/` (the last
//! one, moved aside for the instant of the swap). A slot is *complete* when its `manifest.json`
//! (the step, and each file's size) is present and every file it lists has that size; the
//! manifest is written last, through `write_atomic`, so its presence means everything before it
//! reached the disk. `newest_complete` picks the complete slot with the highest step, wherever it
//! is: resuming needs no repair first.
//!
//! A save (`commit`) goes:
//! 1. settle: make `checkpoint/` the newest complete slot (renaming `checkpoint.partial/` or
//!    `checkpoint.old/` into place when an interrupted save left the newest there) and delete the
//!    others; each deletion happens only while a complete slot at least as new stays;
//! 2. write every file into `checkpoint.partial/`, then its manifest;
//! 3. rename `checkpoint/` to `checkpoint.old/`, then `checkpoint.partial/` to `checkpoint/`;
//! 4. delete `checkpoint.old/`.
//!
//! Before the manifest of step 2 lands, the previous checkpoint is untouched; after it, the new
//! one is complete in `checkpoint.partial/` until it is renamed, and in `checkpoint/` after.
//! (The old protocol deleted `checkpoint.old/` before moving the new one in and ignored
//! `checkpoint.partial/` on resume: two crashes in a row lost the run.)
//!
//! Checkpoints written before manifests existed count as complete in `checkpoint/` and
//! `checkpoint.old/` (the old protocol only renamed finished sets there), with the step of their
//! `trainer_state.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::{steps, write_atomic};

pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const PARTIAL_DIR: &str = "checkpoint.partial";
pub const OLD_DIR: &str = "checkpoint.old";
pub const MANIFEST_FILE: &str = "manifest.json";
/// Where a checkpoint keeps its counters (`checkpoint.rs`); read here only for the step of a
/// checkpoint from before manifests.
const STATE_FILE: &str = "trainer_state.json";

/// The slots, in the order that wins a tie of steps.
const SLOTS: [&str; 3] = [CHECKPOINT_DIR, PARTIAL_DIR, OLD_DIR];

/// What marks a slot complete.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    step: usize,
    /// Every other file of the checkpoint, with its size in bytes.
    files: BTreeMap<String, u64>,
}

/// The step of the checkpoint in `dir` if it is complete (see the module doc).
pub fn complete_step(dir: &Path) -> Option<usize> {
    let Ok(text) = std::fs::read_to_string(dir.join(MANIFEST_FILE)) else {
        return legacy_step(dir);
    };
    let manifest: Manifest = serde_json::from_str(&text).ok()?;
    let intact = manifest.files.iter().all(|(name, &size)| {
        std::fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.len() == size)
    });
    intact.then_some(manifest.step)
}

/// A checkpoint from before manifests: complete outside `checkpoint.partial/`.
fn legacy_step(dir: &Path) -> Option<usize> {
    if dir.file_name()? == PARTIAL_DIR {
        return None;
    }
    #[derive(Deserialize)]
    struct Step {
        step: usize,
    }
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
    serde_json::from_str::<Step>(&text).ok().map(|s| s.step)
}

/// The complete checkpoint with the highest step under `out_dir`, and that step.
pub fn newest_complete(out_dir: &Path) -> Option<(PathBuf, usize)> {
    let mut best: Option<(PathBuf, usize)> = None;
    for slot in SLOTS {
        let dir = out_dir.join(slot);
        if let Some(step) = complete_step(&dir)
            && best.as_ref().is_none_or(|(_, b)| step > *b)
        {
            best = Some((dir, step));
        }
    }
    best
}

/// Whether any slot exists (complete or not): the folder holds (part of) a run.
pub fn any_slot(out_dir: &Path) -> Option<PathBuf> {
    SLOTS.iter().map(|s| out_dir.join(s)).find(|d| d.exists())
}

/// Deletes every slot (a run started over).
pub fn remove_all(out_dir: &Path) -> Result<()> {
    for slot in SLOTS {
        remove_if_present(&out_dir.join(slot))?;
    }
    Ok(())
}

fn remove_if_present(dir: &Path) -> Result<()> {
    if dir.exists() {
        steps::remove_dir_all(dir)?;
    }
    Ok(())
}

/// Step 1 of a save: leaves only `checkpoint/`, holding the newest complete checkpoint (or no
/// slot at all when none is complete).
fn settle(out_dir: &Path) -> Result<()> {
    let [current, partial, old] = SLOTS.map(|s| out_dir.join(s));
    let Some((newest, _)) = newest_complete(out_dir) else {
        return remove_all(out_dir);
    };
    if newest == current {
        remove_if_present(&partial)?;
        return remove_if_present(&old);
    }
    // The newest is elsewhere: everything but it is older or incomplete.
    let others = [&current, &partial, &old]
        .into_iter()
        .filter(|d| **d != newest);
    for dir in others {
        remove_if_present(dir)?;
    }
    steps::rename(&newest, &current)?;
    steps::sync_dir(out_dir);
    Ok(())
}

/// Saves a checkpoint of `step` under `out_dir`: `write` puts its files into the folder it is
/// given; then the manifest and the renames of the module doc make it the current checkpoint.
/// Returns the path of `checkpoint/`.
pub fn commit(
    out_dir: &Path,
    step: usize,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    settle(out_dir)?;
    let [current, partial, old] = SLOTS.map(|s| out_dir.join(s));
    steps::create_dir_all(&partial)?;
    write(&partial)?;
    let manifest = Manifest {
        step,
        files: list_files(&partial)?,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Config {
        file: partial.join(MANIFEST_FILE).display().to_string(),
        field: String::new(),
        detail: e.to_string(),
    })?;
    write_atomic(&partial.join(MANIFEST_FILE), text.as_bytes())?;
    if current.exists() {
        steps::rename(&current, &old)?;
    }
    steps::rename(&partial, &current)?;
    steps::sync_dir(out_dir);
    remove_if_present(&old)?;
    Ok(current)
}

/// The files of a written checkpoint folder with their sizes (hidden temporary files excluded:
/// `write_atomic` removes its own unless killed).
fn list_files(dir: &Path) -> Result<BTreeMap<String, u64>> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata().map_err(io)?;
        if meta.is_file() && !name.starts_with('.') {
            files.insert(name, meta.len());
        }
    }
    Ok(files)
}
