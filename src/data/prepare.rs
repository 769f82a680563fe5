//! `prepare`: a corpus and a tokenizer to the `train` and `val` token shards a trainer reads.
//! Documents are tokenized segment by segment (so a loss flag never straddles a token) and
//! concatenated, each followed by the tokenizer's EOS id when it has one; the EOS carries loss
//! exactly when the document's last segment does (predicting "the answer ends here" is part of
//! an SFT answer, not of its prompt).
//!
//! The validation split is either another corpus (`ValSource::File`) or the last fraction of the
//! tokens of the whole corpus (`ValSource::Fraction`): a plain cut in the token stream, which
//! may fall inside a document. Not here: the file format (`shards.rs`).
//!
//! The corpus is streamed: files are read in batches of about `BATCH_BYTES` of text, each batch
//! tokenized (documents in parallel) and appended to the shards before the next is read, so
//! memory holds one batch (and the largest single file), never the corpus. A fraction split needs
//! the total token count before it can route tokens, so a corpus larger than one batch is
//! tokenized twice (once to count, once to write); one batch is tokenized once and kept.
//!
//! A long segment is tokenized in pieces of at most `PIECE_BYTES`, cut after a paragraph break
//! (or a line break, or a space, or a character where there is none): the `tokenizers` crate
//! holds about 120 bytes per input byte while it encodes, so one 50 MB document in one call
//! needed 6 GB. Where a piece ends, the ids can differ from one-piece tokenization: a whitespace
//! run split by the cut becomes two pre-tokens (`\n\n` as `\n` + `\n`, or the reverse), and
//! nothing merges across the cut. The text decodes back the same either way.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::Tokenizer;
use super::corpus::{BadLinePolicy, CorpusReport, Document, for_each_batch};
use super::shards::{ShardHeader, SplitWriter, Tokenized, sha256_file};
use super::staging::Staging;
use crate::error::{Error, Result};

/// Text read and tokenized at a time (whole files; a larger file is one batch of its own).
pub const BATCH_BYTES: usize = 64 << 20;

/// The longest text tokenized in one call (see the module doc).
pub const PIECE_BYTES: usize = 256 << 10;

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
/// `out/val.{bin,json}`, streaming the corpus in batches of `BATCH_BYTES`. The splits are written
/// into a temporary folder that then replaces `out` as a whole (`staging.rs`), so `out` must hold
/// nothing else.
pub fn prepare(
    input: &Path,
    tokenizer_file: &Path,
    out: &Path,
    val: &ValSource,
    policy: BadLinePolicy,
) -> Result<PrepareSummary> {
    prepare_in_batches(input, tokenizer_file, out, val, policy, BATCH_BYTES)
}

/// `prepare` reading `batch_bytes` of text at a time (the shards do not depend on it).
pub fn prepare_in_batches(
    input: &Path,
    tokenizer_file: &Path,
    out: &Path,
    val: &ValSource,
    policy: BadLinePolicy,
    batch_bytes: usize,
) -> Result<PrepareSummary> {
    let tok = Tokenizer::from_file(tokenizer_file)?;
    let hash = sha256_file(tokenizer_file)?;
    let staging = Staging::begin(out)?;
    let dir = staging.dir().to_path_buf();
    let writer =
        |split: &str| SplitWriter::create(&dir, split, tok.vocab_size(), &hash, tok.eos_id());
    let input_files = [input.to_path_buf()];
    let summary = match val {
        ValSource::Fraction(f) => {
            let err = |detail: String| Error::Data {
                file: input.display().to_string(),
                line: None,
                detail,
            };
            if !(*f > 0.0 && *f < 1.0) {
                return Err(err(format!(
                    "validation fraction {f} must be between 0 and 1 (exclusive)"
                )));
            }
            // Pass 1 counts the tokens; a corpus of one batch keeps its pieces for pass 2.
            let (mut n, mut batches) = (0, 0);
            let mut kept = Vec::new();
            let first_report = for_each_batch(&input_files, policy, batch_bytes, |documents| {
                let pieces = document_pieces(&tok, &documents)?;
                n += pieces.iter().map(|p| p.ids.len()).sum::<usize>();
                batches += 1;
                kept = if batches == 1 { pieces } else { Vec::new() };
                Ok(())
            })?;
            let val_len = ((n as f64 * f).round() as usize).max(1);
            if val_len >= n {
                return Err(err(format!(
                    "{n} tokens are too few to keep a fraction {f} for validation and train on the rest"
                )));
            }
            let cut = n - val_len;
            let (mut train, mut val_w) = (writer("train")?, writer("val")?);
            let mut route = |piece: Piece| -> Result<()> {
                let start = train.count() + val_w.count();
                let head = cut.saturating_sub(start).min(piece.ids.len());
                // The bytes of a segment the cut falls in are shared out by decoding its
                // train-side tokens (exact unless the cut splits a character, then off by at
                // most 3 bytes).
                let head_bytes = if head == piece.ids.len() {
                    piece.bytes
                } else if head == 0 {
                    0
                } else {
                    tok.decode(&piece.ids[..head])?.len().min(piece.bytes)
                };
                train.push(&piece.ids[..head], piece.carries_loss)?;
                train.add_bytes(head_bytes);
                val_w.push(&piece.ids[head..], piece.carries_loss)?;
                val_w.add_bytes(piece.bytes - head_bytes);
                Ok(())
            };
            let report = if batches == 1 {
                kept.into_iter().try_for_each(&mut route)?;
                first_report
            } else {
                stream_pieces(&tok, &input_files, policy, batch_bytes, route)?
            };
            Ok(PrepareSummary {
                train: train.finish()?,
                val: val_w.finish()?,
                report,
                val_report: None,
            })
        }
        ValSource::File(path) => {
            let mut train = writer("train")?;
            let report = stream_pieces(&tok, &input_files, policy, batch_bytes, |p| {
                append(&mut train, &p)
            })?;
            let mut val_w = writer("val")?;
            let val_report =
                stream_pieces(&tok, std::slice::from_ref(path), policy, batch_bytes, |p| {
                    append(&mut val_w, &p)
                })?;
            Ok(PrepareSummary {
                train: train.finish()?,
                val: val_w.finish()?,
                report,
                val_report: Some(val_report),
            })
        }
    }?;
    staging.commit()?;
    Ok(summary)
}

/// One segment's tokens (or a document's EOS, with no bytes), in stream order.
struct Piece {
    ids: Vec<u32>,
    carries_loss: bool,
    bytes: usize,
}

fn append(writer: &mut SplitWriter, piece: &Piece) -> Result<()> {
    writer.push(&piece.ids, piece.carries_loss)?;
    writer.add_bytes(piece.bytes);
    Ok(())
}

/// Reads the corpus under `paths` batch by batch and hands every piece of its token stream to
/// `sink`, in order (see the module doc for the EOS rule).
fn stream_pieces(
    tok: &Tokenizer,
    paths: &[PathBuf],
    policy: BadLinePolicy,
    batch_bytes: usize,
    mut sink: impl FnMut(Piece) -> Result<()>,
) -> Result<CorpusReport> {
    for_each_batch(paths, policy, batch_bytes, |documents| {
        for piece in document_pieces(tok, &documents)? {
            sink(piece)?;
        }
        Ok(())
    })
}

/// The pieces of `documents`' token stream: each document's segments encoded on its own thread,
/// in order.
fn document_pieces(tok: &Tokenizer, documents: &[Document]) -> Result<Vec<Piece>> {
    let encoded: Vec<Vec<Vec<u32>>> = documents
        .par_iter()
        .map(|doc| {
            doc.segments
                .iter()
                .map(|s| encode_in_pieces(tok, &s.text, PIECE_BYTES))
                .collect()
        })
        .collect::<Result<_>>()?;
    let mut pieces = Vec::new();
    for (doc, segments) in documents.iter().zip(encoded) {
        for (seg, ids) in doc.segments.iter().zip(segments) {
            pieces.push(Piece {
                ids,
                carries_loss: seg.carries_loss,
                bytes: seg.text.len(),
            });
        }
        if let Some(eos) = tok.eos_id() {
            pieces.push(Piece {
                ids: vec![eos],
                carries_loss: doc.segments.last().is_some_and(|s| s.carries_loss),
                bytes: 0,
            });
        }
    }
    Ok(pieces)
}

/// `text`'s ids, tokenized in pieces of at most `max` bytes (in parallel), so that memory is
/// bounded by the piece, not the document.
pub fn encode_in_pieces(tok: &Tokenizer, text: &str, max: usize) -> Result<Vec<u32>> {
    if text.len() <= max {
        return tok.encode(text);
    }
    let pieces = split_text(text, max);
    let ids: Vec<Vec<u32>> = pieces
        .par_iter()
        .map(|p| tok.encode(p))
        .collect::<Result<_>>()?;
    Ok(ids.concat())
}

/// `text` cut into consecutive pieces of at most `max` bytes (max >= 4, a UTF-8 character),
/// each ending after the last paragraph break in its reach, else the last line break, else the
/// last space, else at a character boundary.
pub fn split_text(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(4);
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let window = &rest[..end];
        let cut = ["\n\n", "\n", " "]
            .iter()
            .find_map(|sep| window.rfind(sep).map(|i| i + sep.len()))
            .filter(|&i| i > 0)
            .unwrap_or(end);
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// Documents to one token stream with loss flags (see the module doc for the EOS rule).
pub fn tokenize_documents(tok: &Tokenizer, documents: &[Document]) -> Result<Tokenized> {
    let mut out = Tokenized::default();
    for piece in document_pieces(tok, documents)? {
        out.loss
            .extend(std::iter::repeat_n(piece.carries_loss, piece.ids.len()));
        out.ids.extend(piece.ids);
        out.bytes += piece.bytes;
    }
    Ok(out)
}
