//! One run per folder: the lock a trainer holds on its `out_dir`, the check that the folder is
//! writable before any step is spent, and what a folder holding an earlier run looks like.
//!
//! The lock is `OUT/run.lock`, holding the PID of the run that owns the folder, and locked with
//! the OS's advisory file lock (`File::try_lock`: `flock` on unix). The OS drops that lock when
//! the process ends however it ends (`kill -9` included), so a lock file left behind by a dead
//! run is stale by construction: the next run takes it over and writes its own PID. A run that
//! ends normally, or with an error, removes the file. Two runs on one folder would interleave
//! their checkpoints; the second is refused, naming the holder's PID.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::train::METRICS_FILE;
use crate::train::rotation;

pub const LOCK_FILE: &str = "run.lock";

fn folder_err(dir: &Path, kind: std::io::ErrorKind, detail: String) -> Error {
    Error::Io {
        path: dir.display().to_string(),
        source: std::io::Error::new(kind, detail),
    }
}

/// The lock on a run folder, released (its file removed) when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// Holds the OS lock while open.
    _file: File,
}

impl RunLock {
    /// Creates `out_dir` if needed, checks that it is writable, and locks it for this process;
    /// refuses a folder another live run holds, naming its PID.
    pub fn acquire(out_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(out_dir).map_err(|e| {
            folder_err(
                out_dir,
                e.kind(),
                format!("cannot create the run folder: {e}"),
            )
        })?;
        check_writable(out_dir)?;
        let path = out_dir.join(LOCK_FILE);
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        // A run ending removes the file; one that was opened just before may be stale: retry.
        for _ in 0..8 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = match holder.trim() {
                        "" => "of unknown PID".to_string(),
                        pid => pid.to_string(),
                    };
                    return Err(folder_err(
                        out_dir,
                        std::io::ErrorKind::ResourceBusy,
                        format!(
                            "in use by another run: process {holder} holds {}; wait for it to end, or stop it",
                            path.display()
                        ),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
            if !is_file_at(&file, &path) {
                continue;
            }
            file.set_len(0).map_err(io)?;
            file.write_all(std::process::id().to_string().as_bytes())
                .map_err(io)?;
            return Ok(RunLock { path, _file: file });
        }
        Err(io(std::io::Error::other(
            "the lock file keeps being replaced",
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, so no other run can have locked this file meanwhile.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `file` (open) is still the file at `path` (not removed or replaced since it was opened).
fn is_file_at(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Creates and removes a probe file, so a read-only folder stops the run before its first step
/// rather than at its first checkpoint.
fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".write-probe.{}", std::process::id()));
    let written = File::create(&probe).and_then(|mut f| f.write_all(b"probe"));
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| {
        folder_err(
            dir,
            e.kind(),
            format!("not writable ({e}); a run writes its checkpoints and metrics there"),
        )
    })
}

/// What in `out_dir` shows an earlier run, if anything: a checkpoint (complete or not) or
/// metrics. Other files (a tokenizer, the shards) are not a run.
pub fn earlier_run(out_dir: &Path) -> Option<String> {
    if let Some((_, step)) = rotation::newest_complete(out_dir) {
        return Some(format!("a checkpoint of step {step}"));
    }
    if let Some(slot) = rotation::any_slot(out_dir) {
        return Some(format!("an unfinished checkpoint ({})", slot.display()));
    }
    let metrics = out_dir.join(METRICS_FILE);
    metrics
        .is_file()
        .then(|| format!("the metrics of a run ({})", metrics.display()))
}

/// Refuses to start a new run in a folder that holds one (the caller holds the lock).
pub fn refuse_earlier_run(out_dir: &Path) -> Result<()> {
    match earlier_run(out_dir) {
        None => Ok(()),
        Some(what) => Err(folder_err(
            out_dir,
            std::io::ErrorKind::AlreadyExists,
            format!(
                "holds a run ({what}); continue it with --resume, or delete it and start over with --overwrite"
            ),
        )),
    }
}

/// Deletes the run in `out_dir` (its checkpoints and metrics; nothing else), under the lock, so
/// a new run can start there. Refused while another run holds the folder.
pub fn remove_run(out_dir: &Path) -> Result<()> {
    let _lock = RunLock::acquire(out_dir)?;
    rotation::remove_all(out_dir)?;
    let metrics = out_dir.join(METRICS_FILE);
    if metrics.exists() {
        crate::io::steps::remove_file(&metrics)?;
    }
    Ok(())
}
