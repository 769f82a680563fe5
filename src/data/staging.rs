//! Where `prepare` writes: a temporary folder beside the output, `.<out>.prepare.<pid>`, renamed
//! over the output as a whole once both splits are written. Writing the splits in place
//! replaced `train` and then `val`, so a kill in between left a train split of one corpus next to
//! the val split of another; now the output holds the old splits or the new ones, never a mix.
//! (A kill between the two renames of `commit` leaves no output folder at all, only the two
//! temporary ones: a missing folder is a clear error to a trainer, and the next `prepare` cleans
//! up.)
//!
//! Leftovers of a killed `prepare` (the temporary folders, and the temporary files the old
//! in-place writer left inside the output) are removed first, when the process that made them is
//! no longer alive. Since the output folder is replaced whole, it may hold only splits: anything
//! else there is refused rather than deleted.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::steps;

/// The files a `prepare` output holds.
const SPLIT_FILES: [&str; 4] = ["train.bin", "train.json", "val.bin", "val.json"];

/// A `prepare` in progress: its splits go to `dir()`; `commit` puts them in place.
pub struct Staging {
    out: PathBuf,
    parent: PathBuf,
    name: String,
    tmp: PathBuf,
    committed: bool,
}

impl Staging {
    /// Cleans leftovers of killed runs, checks that `out` holds only splits, and creates the
    /// temporary folder.
    pub fn begin(out: &Path) -> Result<Self> {
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Data {
                file: out.display().to_string(),
                line: None,
                detail: "the output must be a folder with a name (not `.` or `/`)".into(),
            })?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        steps::create_dir_all(&parent)?;
        remove_dead_leftovers(&parent, &format!(".{name}."))?;
        if out.is_dir() {
            remove_dead_leftovers(out, ".")?;
            check_only_splits(out)?;
        }
        let tmp = parent.join(format!(".{name}.prepare.{}", std::process::id()));
        if tmp.exists() {
            steps::remove_dir_all(&tmp)?;
        }
        steps::create_dir_all(&tmp)?;
        Ok(Staging {
            out: out.to_path_buf(),
            parent,
            name,
            tmp,
            committed: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Renames the finished folder over the output (moving the old one aside, then deleting it).
    pub fn commit(mut self) -> Result<()> {
        steps::sync_dir(&self.tmp);
        let replaced = self
            .parent
            .join(format!(".{}.replaced.{}", self.name, std::process::id()));
        if self.out.exists() {
            steps::rename(&self.out, &replaced)?;
        }
        steps::rename(&self.tmp, &self.out)?;
        self.committed = true;
        steps::sync_dir(&self.parent);
        if replaced.exists() {
            steps::remove_dir_all(&replaced)?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    /// An error on the way: the output stays as it was, the temporary folder goes.
    fn drop(&mut self) {
        if !self.committed && self.tmp.exists() {
            let _ = steps::remove_dir_all(&self.tmp);
        }
    }
}

/// Removes the entries of `dir` named `<prefix>...<pid>` or `<prefix>...<pid>.<n>` (temporary
/// folders and files) whose process is gone.
fn remove_dead_leftovers(dir: &Path, prefix: &str) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) || leftover_pid(&name).is_none_or(process_alive) {
            continue;
        }
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            steps::remove_dir_all(&path)?;
        } else {
            steps::remove_file(&path)?;
        }
    }
    Ok(())
}

/// The PID in `x.prepare.<pid>`, `x.replaced.<pid>` or `x.tmp.<pid>.<n>` (`AtomicFile`); `None`
/// for any other name.
fn leftover_pid(name: &str) -> Option<u32> {
    for marker in [".prepare.", ".replaced.", ".tmp."] {
        if let Some(at) = name.rfind(marker) {
            let tail = &name[at + marker.len()..];
            return tail.split('.').next()?.parse().ok();
        }
    }
    None
}

/// Whether process `pid` runs. Only Linux can tell cheaply (`/proc`); elsewhere every process
/// counts as alive, so leftovers stay rather than risk deleting a live prepare's files.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

fn check_only_splits(out: &Path) -> Result<()> {
    let io = |source| Error::Io {
        path: out.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(out).map_err(io)? {
        let name = entry
            .map_err(io)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let temporary = name.starts_with('.') && leftover_pid(&name).is_some();
        if !SPLIT_FILES.contains(&name.as_str()) && !temporary {
            return Err(Error::Data {
                file: out.join(&name).display().to_string(),
                line: None,
                detail: "prepare replaces its output folder as a whole, and this is not one of \
                         its splits; move it, or give --out a folder of its own"
                    .into(),
            });
        }
    }
    Ok(())
}
