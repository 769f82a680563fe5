//! Token shards: a prepared split on disk, read back memory-mapped so a corpus larger than RAM
//! costs only page cache. A split `S` is two files in one directory:
//! - `S.bin`: the token ids, little-endian u16 when the vocabulary fits (vocab_size <= 65536),
//!   else u32; nothing else.
//! - `S.json`: `ShardHeader` (`{"format": "crsm-tokens", "version": 1, "dtype", "count",
//!   "vocab_size", "tokenizer_hash", "bytes", "eos_id", "loss_spans"}`).
//!
//! `loss_spans` lists the half-open token ranges `[start, end)` that carry loss (SFT responses),
//! sorted and disjoint; `null` means every token does. `bytes` is the UTF-8 size of the text the
//! tokens encode (EOS separators excluded), which turns loss per token into bits per byte.
//!
//! Opening validates everything up front, including that every id is below `vocab_size` (one
//! pass over the file), so reads after a successful open cannot fail on bad data.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::io::{AtomicFile, write_atomic};

pub const FORMAT: &str = "crsm-tokens";
pub const VERSION: u32 = 1;

/// Width of one id on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDType {
    U16,
    U32,
}

impl TokenDType {
    /// u16 when every id of a `vocab_size` vocabulary fits in it.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size <= 1 << 16 {
            TokenDType::U16
        } else {
            TokenDType::U32
        }
    }

    pub fn width(self) -> usize {
        match self {
            TokenDType::U16 => 2,
            TokenDType::U32 => 4,
        }
    }
}

impl std::fmt::Display for TokenDType {
    /// As the header spells it: `u16` or `u32`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenDType::U16 => "u16",
            TokenDType::U32 => "u32",
        })
    }
}

/// The `S.json` of a split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardHeader {
    pub format: String,
    pub version: u32,
    pub dtype: TokenDType,
    pub count: usize,
    pub vocab_size: usize,
    /// Hex SHA-256 of the tokenizer.json the ids come from (`sha256_file`).
    pub tokenizer_hash: String,
    pub bytes: usize,
    pub eos_id: Option<u32>,
    pub loss_spans: Option<Vec<[usize; 2]>>,
}

/// Token ids with a loss flag each, and the UTF-8 bytes of the text they encode: what
/// `write_split` writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokenized {
    pub ids: Vec<u32>,
    pub loss: Vec<bool>,
    pub bytes: usize,
}

/// Hex SHA-256 of a file's bytes (the `tokenizer_hash` of a shard).
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn paths(dir: &Path, split: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{split}.bin")),
        dir.join(format!("{split}.json")),
    )
}

/// Writes `dir/{split}.bin` and `dir/{split}.json` atomically (the header last) and returns the
/// header. An id at or above `vocab_size`, or a loss mask of another length, is an error.
pub fn write_split(
    dir: &Path,
    split: &str,
    tokens: &Tokenized,
    vocab_size: usize,
    tokenizer_hash: &str,
    eos_id: Option<u32>,
) -> Result<ShardHeader> {
    let mut writer = SplitWriter::create(dir, split, vocab_size, tokenizer_hash, eos_id)?;
    if tokens.loss.len() != tokens.ids.len() {
        return Err(writer.bad(format!(
            "{} loss flags for {} tokens",
            tokens.loss.len(),
            tokens.ids.len()
        )));
    }
    // Runs of equal loss flags, each pushed at once.
    let mut start = 0;
    while start < tokens.ids.len() {
        let flag = tokens.loss[start];
        let len = tokens.loss[start..]
            .iter()
            .take_while(|&&l| l == flag)
            .count();
        writer.push(&tokens.ids[start..start + len], flag)?;
        start += len;
    }
    writer.add_bytes(tokens.bytes);
    writer.finish()
}

/// A split written as its tokens arrive (what `prepare` streams into): ids are checked against
/// the vocabulary and encoded at the split's width into `S.bin`'s temporary file, loss flags
/// become `loss_spans` run by run, and `finish` puts `S.bin` in place and then writes `S.json`.
/// Dropped unfinished (an error on the way), it leaves the directory as it was.
pub struct SplitWriter {
    bin: AtomicFile,
    bin_path: PathBuf,
    json_path: PathBuf,
    dtype: TokenDType,
    vocab_size: usize,
    tokenizer_hash: String,
    eos_id: Option<u32>,
    count: usize,
    bytes: usize,
    spans: Vec<[usize; 2]>,
    /// The start of the run of loss-carrying tokens still open.
    open: Option<usize>,
    /// Whether every token so far carries loss (the header then says `null`).
    all_loss: bool,
}

impl SplitWriter {
    pub fn create(
        dir: &Path,
        split: &str,
        vocab_size: usize,
        tokenizer_hash: &str,
        eos_id: Option<u32>,
    ) -> Result<Self> {
        let (bin_path, json_path) = paths(dir, split);
        Ok(SplitWriter {
            bin: AtomicFile::create(&bin_path)?,
            bin_path,
            json_path,
            dtype: TokenDType::for_vocab(vocab_size),
            vocab_size,
            tokenizer_hash: tokenizer_hash.into(),
            eos_id,
            count: 0,
            bytes: 0,
            spans: Vec::new(),
            open: None,
            all_loss: true,
        })
    }

    fn bad(&self, detail: String) -> Error {
        Error::Data {
            file: self.bin_path.display().to_string(),
            line: None,
            detail,
        }
    }

    /// Appends `ids`, all carrying loss or none.
    pub fn push(&mut self, ids: &[u32], carries_loss: bool) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        if let Some((i, &id)) = ids
            .iter()
            .enumerate()
            .find(|&(_, &id)| id as usize >= self.vocab_size)
        {
            return Err(self.bad(format!(
                "token {} is id {id}, not below vocab size {}",
                self.count + i,
                self.vocab_size
            )));
        }
        let mut data = Vec::with_capacity(ids.len() * self.dtype.width());
        for &id in ids {
            match self.dtype {
                // id < vocab_size <= 65536 here.
                TokenDType::U16 => data.extend_from_slice(&(id as u16).to_le_bytes()),
                TokenDType::U32 => data.extend_from_slice(&id.to_le_bytes()),
            }
        }
        self.bin.write_all(&data)?;
        match (carries_loss, self.open) {
            (true, None) => self.open = Some(self.count),
            (false, open) => {
                if let Some(start) = open {
                    self.spans.push([start, self.count]);
                    self.open = None;
                }
                self.all_loss = false;
            }
            (true, Some(_)) => {}
        }
        self.count += ids.len();
        Ok(())
    }

    /// Counts `n` more bytes of text behind the tokens (for bits per byte).
    pub fn add_bytes(&mut self, n: usize) {
        self.bytes += n;
    }

    /// Tokens written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Puts `S.bin` in place, then writes `S.json` (atomically, last) and returns the header.
    pub fn finish(mut self) -> Result<ShardHeader> {
        if let Some(start) = self.open.take() {
            self.spans.push([start, self.count]);
        }
        let header = ShardHeader {
            format: FORMAT.into(),
            version: VERSION,
            dtype: self.dtype,
            count: self.count,
            vocab_size: self.vocab_size,
            tokenizer_hash: self.tokenizer_hash.clone(),
            bytes: self.bytes,
            eos_id: self.eos_id,
            loss_spans: (!self.all_loss).then(|| std::mem::take(&mut self.spans)),
        };
        let text = serde_json::to_string_pretty(&header)
            .map_err(|e| self.bad(format!("cannot serialise header: {e}")))?;
        let json_path = self.json_path.clone();
        self.bin.commit()?;
        write_atomic(&json_path, text.as_bytes())?;
        Ok(header)
    }
}

/// A split opened for reading: header checked, ids memory-mapped.
#[derive(Debug)]
pub struct TokenShard {
    header: ShardHeader,
    /// `None` for an empty split (a zero-length file cannot be mapped everywhere).
    data: Option<Mmap>,
    /// `header.loss_spans` as ranges, or `None` for all loss.
    spans: Option<Vec<Range<usize>>>,
    file: String,
}

impl TokenShard {
    /// Opens `dir/{split}.bin` with its header. With `tokenizer_hash`, a shard made with another
    /// tokenizer is an error. Every check (header fields, file length == count * width, loss
    /// spans, every id < vocab_size) happens here; errors name the file.
    pub fn open(dir: &Path, split: &str, tokenizer_hash: Option<&str>) -> Result<Self> {
        let (bin, json) = paths(dir, split);
        let json_file = json.display().to_string();
        let file = bin.display().to_string();
        let text = crate::io::read_text(&json)?;
        let header_err = |detail: String| Error::Data {
            file: json_file.clone(),
            line: None,
            detail,
        };
        let header: ShardHeader = serde_json::from_str(&text)
            .map_err(|e| header_err(format!("not a token shard header ({e})")))?;
        if header.format != FORMAT || header.version != VERSION {
            return Err(header_err(format!(
                "format {:?} version {} (expected {FORMAT:?} version {VERSION})",
                header.format, header.version
            )));
        }
        if header.dtype.width() == 2 && header.vocab_size > 1 << 16 {
            return Err(header_err(format!(
                "dtype u16 cannot hold a vocab of {}",
                header.vocab_size
            )));
        }
        if let Some(want) = tokenizer_hash
            && want != header.tokenizer_hash
        {
            return Err(header_err(format!(
                "made with tokenizer {} but this run's tokenizer is {want}; prepare the data again",
                header.tokenizer_hash
            )));
        }
        if let Some(eos) = header.eos_id
            && eos as usize >= header.vocab_size
        {
            return Err(header_err(format!(
                "eos_id {eos} is not below vocab_size {}",
                header.vocab_size
            )));
        }
        let spans = header
            .loss_spans
            .as_ref()
            .map(|s| check_spans(s, header.count))
            .transpose()
            .map_err(header_err)?;

        let data_err = |detail: String| Error::Data {
            file: file.clone(),
            line: None,
            detail,
        };
        let io = |source| Error::Io {
            path: file.clone(),
            source,
        };
        let handle = File::open(&bin).map_err(io)?;
        let len = handle.metadata().map_err(io)?.len();
        let want = header.count as u64 * header.dtype.width() as u64;
        if len != want {
            return Err(data_err(format!(
                "{len} bytes, but the header's {} {} ids need {want}",
                header.count, header.dtype
            )));
        }
        let data = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only; like every reader of files we assume no other process
            // truncates or rewrites the shard while it is open (`write_split` replaces files by
            // rename, which leaves an open map on the old contents intact).
            Some(unsafe { Mmap::map(&handle) }.map_err(io)?)
        };
        let shard = TokenShard {
            header,
            data,
            spans,
            file,
        };
        let limit = shard.header.vocab_size;
        if let Some(i) = (0..shard.len()).find(|&i| shard.id_at(i) as usize >= limit) {
            return Err(Error::Data {
                file: shard.file.clone(),
                line: None,
                detail: format!(
                    "token {i} is id {}, not below vocab_size {limit}",
                    shard.id_at(i)
                ),
            });
        }
        Ok(shard)
    }

    pub fn header(&self) -> &ShardHeader {
        &self.header
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.header.count
    }

    pub fn is_empty(&self) -> bool {
        self.header.count == 0
    }

    /// The `.bin` file, for messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Replaces `out` with ids `start..start + len`.
    pub fn read(&self, start: usize, len: usize, out: &mut Vec<u32>) -> Result<()> {
        self.check_range("TokenShard::read", start, len)?;
        out.clear();
        out.extend((start..start + len).map(|i| self.id_at(i)));
        Ok(())
    }

    /// Replaces `out` with whether each token of `start..start + len` carries loss.
    pub fn carries_loss(&self, start: usize, len: usize, out: &mut Vec<bool>) -> Result<()> {
        self.check_range("TokenShard::carries_loss", start, len)?;
        out.clear();
        match &self.spans {
            None => out.resize(len, true),
            Some(spans) => {
                // The first span that ends after `start`; walk forward from there.
                let mut s = spans.partition_point(|r| r.end <= start);
                for i in start..start + len {
                    while s < spans.len() && spans[s].end <= i {
                        s += 1;
                    }
                    out.push(s < spans.len() && spans[s].start <= i);
                }
            }
        }
        Ok(())
    }

    fn check_range(&self, op: &'static str, start: usize, len: usize) -> Result<()> {
        if start.checked_add(len).is_none_or(|end| end > self.len()) {
            return Err(Error::InvalidArgument {
                op,
                detail: format!(
                    "tokens {start}..{} are past the end of {} ({} tokens)",
                    start.saturating_add(len),
                    self.file,
                    self.len()
                ),
            });
        }
        Ok(())
    }

    /// The id at `i < len()`.
    fn id_at(&self, i: usize) -> u32 {
        let Some(data) = &self.data else { return 0 };
        match self.header.dtype {
            TokenDType::U16 => u16::from_le_bytes([data[2 * i], data[2 * i + 1]]).into(),
            TokenDType::U32 => u32::from_le_bytes([
                data[4 * i],
                data[4 * i + 1],
                data[4 * i + 2],
                data[4 * i + 3],
            ]),
        }
    }
}

/// Loss spans must be non-empty, sorted, disjoint and inside the shard.
fn check_spans(
    spans: &[[usize; 2]],
    count: usize,
) -> std::result::Result<Vec<Range<usize>>, String> {
    let mut end_before = 0;
    spans
        .iter()
        .map(|&[start, end]| {
            if start < end_before || start >= end || end > count {
                return Err(format!(
                    "loss span [{start}, {end}) is empty, out of order or past the {count} tokens"
                ));
            }
            end_before = end;
            Ok(start..end)
        })
        .collect()
}
