//! Reading a training corpus: plain text and JSONL files into documents, each a list of segments
//! that do or do not carry loss (SFT trains only on responses). Not here: tokenizing (see
//! `prepare.rs`) or anything about token files (`shards.rs`).
//!
//! A path is a file or a directory. A directory is walked recursively in sorted order and only
//! its `*.txt` and `*.jsonl` files are read (hidden files are skipped); a file given by name is
//! JSONL when it ends in `.jsonl` and plain text otherwise.
//! - plain text: the whole file is one document, all of it carries loss.
//! - JSONL: one document per non-blank line, one of
//!   - `{"text": T}`: T, all loss;
//!   - `{"context": [turn, ...], "response": R}`: the turns joined by "\n" and a final "\n"
//!     (no loss), then R (loss);
//!   - `{"instruction": I, "input": X, "output": O}` (`input` may be absent or empty): the
//!     prompt `alpaca_prompt(I, X)` (no loss), then O (loss);
//!   - `{"prompt": P, "answer": A}` (a task problem, `tasks::Problem`): P (no loss), then A
//!     (loss), so a problem file is an SFT corpus as it stands.
//!
//! Other keys are ignored. A line that is not a JSON object in one of these shapes is handled
//! by `BadLinePolicy`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The Alpaca prompt (Stanford Alpaca's `PROMPT_DICT`), the one place the template lives. With
/// an input: `PREAMBLE_WITH_INPUT`, instruction, `INPUT_HEADER`, input, `RESPONSE_HEADER`;
/// without: `PREAMBLE_NO_INPUT`, instruction, `RESPONSE_HEADER`.
pub mod alpaca {
    pub const PREAMBLE_WITH_INPUT: &str = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n";
    pub const PREAMBLE_NO_INPUT: &str = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n";
    pub const INPUT_HEADER: &str = "\n\n### Input:\n";
    pub const RESPONSE_HEADER: &str = "\n\n### Response:\n";
}

/// The prompt (no loss) that precedes an instruction's output.
pub fn alpaca_prompt(instruction: &str, input: &str) -> String {
    use alpaca::*;
    if input.is_empty() {
        format!("{PREAMBLE_NO_INPUT}{instruction}{RESPONSE_HEADER}")
    } else {
        format!("{PREAMBLE_WITH_INPUT}{instruction}{INPUT_HEADER}{input}{RESPONSE_HEADER}")
    }
}

/// A piece of a document's text, and whether the model is trained to predict it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub carries_loss: bool,
}

/// One training document: its segments in order (their texts concatenate to the document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub segments: Vec<Segment>,
}

impl Document {
    /// UTF-8 bytes of the document's text.
    pub fn bytes(&self) -> usize {
        self.segments.iter().map(|s| s.text.len()).sum()
    }

    fn segment(text: impl Into<String>, carries_loss: bool) -> Segment {
        Segment {
            text: text.into(),
            carries_loss,
        }
    }
}

/// What to do with a JSONL line that is not a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadLinePolicy {
    /// Leave it out and go on; it is counted in `CorpusReport`.
    Skip,
    /// Stop with an error naming file:line and why.
    Fail,
}

/// A JSONL line that was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// How many skipped lines `CorpusReport::first_bad_lines` keeps.
pub const BAD_LINES_KEPT: usize = 5;

/// What reading a corpus found, for the caller to print (the library prints nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorpusReport {
    pub files: usize,
    pub documents: usize,
    /// Bad lines left out (`BadLinePolicy::Skip`).
    pub skipped_lines: usize,
    /// The first `BAD_LINES_KEPT` of them.
    pub first_bad_lines: Vec<BadLine>,
}

#[derive(Clone, Debug, Default)]
pub struct Corpus {
    pub documents: Vec<Document>,
    pub report: CorpusReport,
}

/// Reads every file under `paths` (files or directories) into documents. Errors: a path that
/// cannot be read, text that is not UTF-8 (naming the byte offset), a bad line under
/// `BadLinePolicy::Fail`, and a corpus with no text at all.
pub fn read_corpus(paths: &[PathBuf], policy: BadLinePolicy) -> Result<Corpus> {
    let mut documents = Vec::new();
    let report = for_each_batch(paths, policy, usize::MAX, |batch| {
        documents.extend(batch);
        Ok(())
    })?;
    Ok(Corpus { documents, report })
}

/// Reads the files under `paths` as `read_corpus` does, but hands their documents to `sink` in
/// batches of whole files, in order, each batch as soon as its files hold `batch_bytes` or more
/// (and the rest at the end), so a caller that consumes batches holds one batch of text rather
/// than the corpus. Same errors as `read_corpus`; the empty-corpus error comes after the sink saw
/// every (empty) batch.
pub fn for_each_batch(
    paths: &[PathBuf],
    policy: BadLinePolicy,
    batch_bytes: usize,
    mut sink: impl FnMut(Vec<Document>) -> Result<()>,
) -> Result<CorpusReport> {
    let mut report = CorpusReport::default();
    let (mut batch, mut held, mut any_text) = (Vec::new(), 0usize, false);
    for path in paths {
        let mut files = Vec::new();
        collect_files(path, true, &mut files)?;
        for file in files {
            let docs = read_file(&file, policy, &mut report)?;
            report.files += 1;
            report.documents += docs.len();
            held += docs.iter().map(Document::bytes).sum::<usize>();
            any_text |= docs.iter().any(|d| d.bytes() > 0);
            batch.extend(docs);
            if held >= batch_bytes {
                sink(std::mem::take(&mut batch))?;
                held = 0;
            }
        }
    }
    if !batch.is_empty() {
        sink(batch)?;
    }
    if !any_text {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::Data {
            file: names.join(", "),
            line: None,
            detail: format!(
                "empty corpus: {} file(s) read, no text found (directories are searched for *.txt and *.jsonl)",
                report.files
            ),
        });
    }
    Ok(report)
}

/// The files a path names: itself, or (for a directory) its `*.txt` / `*.jsonl` files, sorted.
fn collect_files(path: &Path, named: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        if named || matches!(extension(path), Some("txt" | "jsonl")) {
            out.push(path.to_path_buf());
        }
        return Ok(());
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?.path();
        let hidden = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden {
            entries.push(entry);
        }
    }
    entries.sort();
    for entry in entries {
        collect_files(&entry, false, out)?;
    }
    Ok(())
}

fn extension(path: &Path) -> Option<&str> {
    path.extension().and_then(|e| e.to_str())
}

/// The documents of one file; bad lines skipped under `BadLinePolicy::Skip` go into `report`.
fn read_file(
    path: &Path,
    policy: BadLinePolicy,
    report: &mut CorpusReport,
) -> Result<Vec<Document>> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    let text = utf8(&bytes, &file)?;
    let mut documents = Vec::new();
    if extension(path) != Some("jsonl") {
        if !text.is_empty() {
            documents.push(Document {
                segments: vec![Document::segment(text, true)],
            });
        }
        return Ok(documents);
    }
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(doc) => documents.push(doc),
            Err(reason) => {
                let bad = BadLine {
                    file: file.clone(),
                    line: i + 1,
                    reason,
                };
                if policy == BadLinePolicy::Fail {
                    return Err(Error::Data {
                        file: bad.file,
                        line: Some(bad.line),
                        detail: format!("{} (fix or remove the line)", bad.reason),
                    });
                }
                report.skipped_lines += 1;
                if report.first_bad_lines.len() < BAD_LINES_KEPT {
                    report.first_bad_lines.push(bad);
                }
            }
        }
    }
    Ok(documents)
}

/// The text of a file, or an error naming the byte offset (and line) where UTF-8 breaks.
fn utf8<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        Error::Data {
            file: file.to_string(),
            line: Some(line),
            detail: format!(
                "not UTF-8: invalid byte 0x{:02x} at byte offset {offset}",
                bytes[offset]
            ),
        }
    })
}

/// One JSONL line to a document, or why it is not one.
fn parse_line(line: &str) -> std::result::Result<Document, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not valid JSON ({e})"))?;
    let Some(obj) = value.as_object() else {
        return Err(format!("expected a JSON object, got {}", kind(&value)));
    };
    let string = |key: &str| -> std::result::Result<Option<&str>, String> {
        match obj.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("\"{key}\" must be a string, got {}", kind(other))),
        }
    };
    let segments = if let Some(text) = string("text")? {
        vec![Document::segment(text, true)]
    } else if let Some(context) = obj.get("context") {
        let Some(turns) = context.as_array() else {
            return Err(format!(
                "\"context\" must be an array of strings, got {}",
                kind(context)
            ));
        };
        let turns = turns
            .iter()
            .map(|t| {
                t.as_str()
                    .ok_or_else(|| format!("\"context\" holds {}, not only strings", kind(t)))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let response = string("response")?.ok_or("\"context\" without a \"response\" string")?;
        let mut prompt = turns.join("\n");
        if !turns.is_empty() {
            prompt.push('\n');
        }
        vec![
            Document::segment(prompt, false),
            Document::segment(response, true),
        ]
    } else if let Some(instruction) = string("instruction")? {
        let input = string("input")?.unwrap_or("");
        let output = string("output")?.ok_or("\"instruction\" without an \"output\" string")?;
        vec![
            Document::segment(alpaca_prompt(instruction, input), false),
            Document::segment(output, true),
        ]
    } else if let Some(prompt) = string("prompt")? {
        let answer = string("answer")?.ok_or("\"prompt\" without an \"answer\" string")?;
        vec![
            Document::segment(prompt, false),
            Document::segment(answer, true),
        ]
    } else {
        return Err(
            "expected {\"text\"}, {\"context\", \"response\"}, {\"instruction\", \"input\", \"output\"} or {\"prompt\", \"answer\"}"
                .to_string(),
        );
    };
    Ok(Document { segments })
}

/// A JSON value's kind, for error messages.
fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
