//! `prepare`: a corpus and a tokenizer to the `train` and `val` token shards a trainer reads.
//! Documents are tokenized segment by segment (so a loss flag never straddles a token) and
//! concatenated, each followed by the tokenizer's EOS id when it has one; the EOS carries loss
//! exactly when the document's last segment does (predicting "the answer ends here" is part of
//! an SFT answer, not of its prompt).
//!
//! The validation split is either another corpus (`ValSource::File`) or the last fraction of the
//! tokens of the whole corpus (`ValSource::Fraction`): a plain cut in the token stream, which
//! may fall inside a document. Not here: the file format (`shards.rs`).

use std::ops::Range;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::Tokenizer;
use super::corpus::{BadLinePolicy, CorpusReport, Document, read_corpus};
use super::shards::{ShardHeader, Tokenized, sha256_file, write_split};
use crate::error::{Error, Result};

/// Where the validation split comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ValSource {
    /// The last fraction (0 < F < 1) of the corpus's tokens.
    Fraction(f64),
    /// A separate corpus (file or directory), read like the input.
    File(PathBuf),
}

/// What `prepare` wrote, for the caller to print.
#[derive(Clone, Debug)]
pub struct PrepareSummary {
    pub train: ShardHeader,
    pub val: ShardHeader,
    /// The input corpus.
    pub report: CorpusReport,
    /// The `ValSource::File` corpus, if one was given.
    pub val_report: Option<CorpusReport>,
}

/// Reads `input`, tokenizes it with `tokenizer_file` and writes `out/train.{bin,json}` and
/// `out/val.{bin,json}` (creating `out`).
pub fn prepare(
    input: &Path,
    tokenizer_file: &Path,
    out: &Path,
    val: &ValSource,
    policy: BadLinePolicy,
) -> Result<PrepareSummary> {
    let tok = Tokenizer::from_file(tokenizer_file)?;
    let hash = sha256_file(tokenizer_file)?;
    let corpus = read_corpus(&[input.to_path_buf()], policy)?;
    let (all, marks) = tokenize_with_marks(&tok, &corpus.documents)?;
    let (train, val_tokens, val_report) = match val {
        ValSource::Fraction(f) => {
            let (train, val) = split_tail(&tok, all, &marks, *f, input)?;
            (train, val, None)
        }
        ValSource::File(path) => {
            let val_corpus = read_corpus(std::slice::from_ref(path), policy)?;
            let (val, _) = tokenize_with_marks(&tok, &val_corpus.documents)?;
            (all, val, Some(val_corpus.report))
        }
    };
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.display().to_string(),
        source,
    })?;
    let vocab = tok.vocab_size();
    let eos = tok.eos_id();
    Ok(PrepareSummary {
        train: write_split(out, "train", &train, vocab, &hash, eos)?,
        val: write_split(out, "val", &val_tokens, vocab, &hash, eos)?,
        report: corpus.report,
        val_report,
    })
}

/// Documents to one token stream with loss flags (see the module doc for the EOS rule).
pub fn tokenize_documents(tok: &Tokenizer, documents: &[Document]) -> Result<Tokenized> {
    Ok(tokenize_with_marks(tok, documents)?.0)
}

/// Where one segment's tokens are in the stream, and how many bytes of text they encode.
struct SegmentMark {
    tokens: Range<usize>,
    bytes: usize,
}

fn tokenize_with_marks(
    tok: &Tokenizer,
    documents: &[Document],
) -> Result<(Tokenized, Vec<SegmentMark>)> {
    // Each document's segments encoded on its own thread; concatenated in order below.
    let encoded: Vec<Vec<Vec<u32>>> = documents
        .par_iter()
        .map(|doc| doc.segments.iter().map(|s| tok.encode(&s.text)).collect())
        .collect::<Result<_>>()?;
    let mut out = Tokenized::default();
    let mut marks = Vec::new();
    for (doc, segments) in documents.iter().zip(encoded) {
        for (seg, ids) in doc.segments.iter().zip(segments) {
            let start = out.ids.len();
            out.loss
                .extend(std::iter::repeat_n(seg.carries_loss, ids.len()));
            out.ids.extend(ids);
            out.bytes += seg.text.len();
            marks.push(SegmentMark {
                tokens: start..out.ids.len(),
                bytes: seg.text.len(),
            });
        }
        if let Some(eos) = tok.eos_id() {
            out.ids.push(eos);
            out.loss
                .push(doc.segments.last().is_some_and(|s| s.carries_loss));
        }
    }
    Ok((out, marks))
}

/// Cuts the last `fraction` of the tokens off as validation. The bytes of the segment the cut
/// falls in are shared out by decoding its train-side tokens (exact unless the cut splits a
/// character, then off by at most 3 bytes).
fn split_tail(
    tok: &Tokenizer,
    all: Tokenized,
    marks: &[SegmentMark],
    fraction: f64,
    input: &Path,
) -> Result<(Tokenized, Tokenized)> {
    let n = all.ids.len();
    let err = |detail: String| Error::Data {
        file: input.display().to_string(),
        line: None,
        detail,
    };
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(err(format!(
            "validation fraction {fraction} must be between 0 and 1 (exclusive)"
        )));
    }
    let val_len = ((n as f64 * fraction).round() as usize).max(1);
    if val_len >= n {
        return Err(err(format!(
            "{n} tokens are too few to keep a fraction {fraction} for validation and train on the rest"
        )));
    }
    let cut = n - val_len;
    let mut train_bytes = 0;
    for mark in marks {
        if mark.tokens.end <= cut {
            train_bytes += mark.bytes;
        } else if mark.tokens.start < cut {
            let head = tok.decode(&all.ids[mark.tokens.start..cut])?;
            train_bytes += head.len().min(mark.bytes);
        }
    }
    let Tokenized {
        mut ids,
        mut loss,
        bytes,
    } = all;
    let val = Tokenized {
        ids: ids.split_off(cut),
        loss: loss.split_off(cut),
        bytes: bytes - train_bytes,
    };
    let train = Tokenized {
        ids,
        loss,
        bytes: train_bytes,
    };
    Ok((train, val))
}
