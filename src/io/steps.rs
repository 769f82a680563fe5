//! The `std::fs` calls of a checkpoint save or a `prepare` that are not a file write
//! (`write_atomic` covers those): each passes through the fault injection (`fault`) first, so the
//! crash tests can fail or "kill" every step in turn. Errors name the path.

use std::fs;
use std::path::Path;

use super::fault::{self, FsOp};
use crate::error::{Error, Result};

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

pub fn create_dir_all(dir: &Path) -> Result<()> {
    fault::check(FsOp::CreateDir, dir).map_err(|e| io_err(dir, e))?;
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))
}

/// Renames `from` to `to`; an error names `from`.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    fault::check(FsOp::Rename, to).map_err(|e| io_err(from, e))?;
    fs::rename(from, to).map_err(|e| io_err(from, e))
}

pub fn remove_dir_all(dir: &Path) -> Result<()> {
    fault::check(FsOp::Remove, dir).map_err(|e| io_err(dir, e))?;
    fs::remove_dir_all(dir).map_err(|e| io_err(dir, e))
}

pub fn remove_file(file: &Path) -> Result<()> {
    fault::check(FsOp::Remove, file).map_err(|e| io_err(file, e))?;
    fs::remove_file(file).map_err(|e| io_err(file, e))
}

/// Makes the renames in `dir` durable (best effort, as for `write_atomic`).
pub fn sync_dir(dir: &Path) {
    super::atomic::sync_dir(dir);
}
