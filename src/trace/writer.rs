//! Writes a trace as JSON Lines, a header first. Lines are flushed as they are written, so a
//! viewer can follow a live trace and a crash keeps everything before it.

use std::io::Write;
use std::path::Path;

use super::events::{Header, TraceEvent};
use crate::error::{Error, Result};

pub struct TraceWriter {
    out: Box<dyn Write + Send>,
    path: String,
}

impl TraceWriter {
    /// Creates (or replaces) `path` and writes the header.
    pub fn create(path: &Path, header: Header) -> Result<Self> {
        let file = std::fs::File::create(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut w = TraceWriter {
            out: Box::new(std::io::BufWriter::new(file)),
            path: path.display().to_string(),
        };
        w.write(&TraceEvent::Header(header))?;
        Ok(w)
    }

    /// A writer into any sink (tests, in-memory traces).
    pub fn to_sink(out: Box<dyn Write + Send>, header: Header) -> Result<Self> {
        let mut w = TraceWriter {
            out,
            path: "<sink>".into(),
        };
        w.write(&TraceEvent::Header(header))?;
        Ok(w)
    }

    pub fn write(&mut self, event: &TraceEvent) -> Result<()> {
        let line = serde_json::to_string(event).expect("trace events serialise");
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        writeln!(self.out, "{line}").map_err(io)?;
        self.out.flush().map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}
