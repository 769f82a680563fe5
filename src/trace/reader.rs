//! Reads a trace: the header must be the first line and of this schema's version; every later
//! line that does not parse is reported with its number and skipped, so one bad line never loses
//! the rest.

use std::path::Path;

use super::events::{Header, SCHEMA, TraceEvent, VERSION};
use crate::error::{Error, Result};

/// A line that did not parse (1-based number) and why.
#[derive(Clone, Debug, PartialEq)]
pub struct BadLine {
    pub line: usize,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub header: Header,
    /// The events after the header with their 1-based line numbers.
    pub events: Vec<(usize, TraceEvent)>,
    pub bad_lines: Vec<BadLine>,
}

/// Parses trace text; `file` names it in errors. Blank lines are ignored.
pub fn read_trace(text: &str, file: &str) -> Result<Trace> {
    let bad_header = |detail: String| Error::Data {
        file: file.into(),
        line: Some(1),
        detail,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = match lines.next() {
        None => {
            return Err(bad_header(
                "empty: a trace starts with its header line".into(),
            ));
        }
        Some((_, first)) => {
            let value: serde_json::Value = serde_json::from_str(first)
                .map_err(|e| bad_header(format!("the header line is not JSON ({e})")))?;
            let (schema, version) = (value.get("schema"), value.get("version"));
            if schema.and_then(|s| s.as_str()) != Some(SCHEMA) {
                return Err(bad_header(format!(
                    "not a crsm trace (schema {schema:?}, expected {SCHEMA:?})"
                )));
            }
            let v = version.and_then(|v| v.as_u64());
            if v != Some(VERSION as u64) {
                return Err(bad_header(format!(
                    "schema version {} is not the version {VERSION} this build reads",
                    version.map_or("missing".into(), |v| v.to_string())
                )));
            }
            match serde_json::from_value(value) {
                Ok(TraceEvent::Header(h)) => h,
                Ok(_) => return Err(bad_header("the first line is not a header event".into())),
                Err(e) => return Err(bad_header(format!("bad header ({e})"))),
            }
        }
    };
    let mut trace = Trace {
        header,
        events: Vec::new(),
        bad_lines: Vec::new(),
    };
    for (i, line) in lines {
        match serde_json::from_str::<TraceEvent>(line) {
            Ok(TraceEvent::Header(_)) => trace.bad_lines.push(BadLine {
                line: i + 1,
                message: "a second header".into(),
            }),
            Ok(e) => trace.events.push((i + 1, e)),
            Err(e) => trace.bad_lines.push(BadLine {
                line: i + 1,
                message: e.to_string(),
            }),
        }
    }
    Ok(trace)
}

pub fn read_trace_file(path: &Path) -> Result<Trace> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    read_trace(&text, &path.display().to_string())
}
