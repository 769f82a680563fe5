//! `write_atomic`: a file either keeps its old contents or gets all the new ones. The bytes go to
//! a temporary file in the same directory (a rename is only atomic within one file system), which
//! is flushed to disk before it is renamed over the target; the directory is then synced so the
//! rename itself survives a power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::fault::{self, FsOp, Verdict};
use crate::error::{Error, Result};

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path`, replacing any existing file, without ever exposing a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file written bit by bit that appears at its path only when `commit` says it is complete, by
/// the same temp-file-and-rename as `write_atomic`. Dropped without a commit (an error on the
/// way), it removes its temporary file and leaves `path` as it was.
pub struct AtomicFile {
    path: PathBuf,
    dir: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let file_name = path.file_name().ok_or_else(|| {
            io_err(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
            )
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Unique per process and call, so two saves racing in one directory never share a temp file.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(
            ".tmp.{}.{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dir.join(tmp_name);
        fault::check(FsOp::CreateFile, &tmp).map_err(|e| io_err(&tmp, e))?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            dir,
            tmp,
            file: Some(BufWriter::new(file)),
        })
    }

    /// Appends `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .expect("an AtomicFile is open until commit");
        match fault::step(FsOp::Write, &self.tmp) {
            Verdict::Proceed => {}
            Verdict::Die => {
                // Killed mid-write: half the bytes reached the file.
                let _ = file.write_all(&bytes[..bytes.len() / 2]);
                let _ = file.flush();
                return Err(io_err(&self.tmp, fault::injected(Verdict::Die)));
            }
            v => return Err(io_err(&self.tmp, fault::injected(v))),
        }
        file.write_all(bytes).map_err(|e| io_err(&self.tmp, e))
    }

    /// Flushes the bytes to disk and renames the file over `path`.
    pub fn commit(mut self) -> Result<()> {
        let file = self
            .file
            .take()
            .expect("an AtomicFile is open until commit");
        let file = file
            .into_inner()
            .map_err(|e| io_err(&self.tmp, e.into_error()))?;
        fault::check(FsOp::Fsync, &self.tmp).map_err(|e| io_err(&self.tmp, e))?;
        file.sync_all().map_err(|e| io_err(&self.tmp, e))?;
        drop(file);
        fault::check(FsOp::Rename, &self.path).map_err(|e| io_err(&self.path, e))?;
        fs::rename(&self.tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        // Renamed: nothing left for `drop` to clean up.
        self.tmp = PathBuf::new();
        sync_dir(&self.dir);
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            drop(self.file.take());
            // Best effort: the error that matters is the one that stopped the writing.
            if fault::check(FsOp::Remove, &self.tmp).is_ok() {
                let _ = fs::remove_file(&self.tmp);
            }
        }
    }
}

/// Makes the rename durable. Only unix can open a directory to sync it; elsewhere, and on file
/// systems that refuse, the rename is still atomic, just not yet guaranteed on disk.
pub(crate) fn sync_dir(dir: &Path) {
    if fault::check(FsOp::SyncDir, dir).is_ok()
        && cfg!(unix)
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}
