//! Text <-> token ids. Either a Hugging Face `tokenizer.json` (any model the `tokenizers` crate
//! reads: BPE, WordPiece, Unigram, ...) or, when no tokenizer is given, plain bytes (ids 0..256).
//! Not here: training a tokenizer (`bpe.rs`), and streaming decode (see `stream.rs`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// The name errors give the byte-level tokenizer, which has no file.
const BYTE_LEVEL: &str = "byte-level tokenizer";

/// Names of end-of-text tokens, in the order we look for them. A `tokenizer.json` has no notion
/// of "the" EOS (transformers keeps it in `tokenizer_config.json` / `config.json`), so we take the
/// first of these that the file declares as a special token. GPT-NeoX (the Mamba tokenizer):
/// `<|endoftext|>` = 0.
const EOS_NAMES: [&str; 6] = [
    "<|endoftext|>",
    "</s>",
    "<eos>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|im_end|>",
];

pub struct Tokenizer {
    kind: Kind,
    /// Where it came from (the file path, or "byte-level tokenizer"), for error messages.
    source: String,
    /// One past the largest id, so `decode` can refuse ids the tokenizer does not know (the
    /// `tokenizers` crate silently drops them).
    id_limit: u32,
    eos: Option<u32>,
}

enum Kind {
    Hf(Box<tokenizers::Tokenizer>),
    Bytes,
}

impl Tokenizer {
    /// Loads a Hugging Face `tokenizer.json`. Errors name the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| Error::Tokenizer {
            file: file.clone(),
            detail: format!("not a valid tokenizer.json: {e}"),
        })?;
        Self::from_hf(inner, file)
    }

    /// Wraps a tokenizer built in memory (e.g. one just trained); `source` names it in errors.
    pub fn from_hf(inner: tokenizers::Tokenizer, source: impl Into<String>) -> Result<Self> {
        let source = source.into();
        let id_limit = inner.get_vocab(true).values().max().map_or(0, |&m| m + 1);
        if id_limit == 0 {
            return Err(Error::Tokenizer {
                file: source,
                detail: "the vocabulary is empty".into(),
            });
        }
        let specials = inner.get_added_tokens_decoder();
        let eos = EOS_NAMES.iter().find_map(|name| {
            specials
                .iter()
                .find(|(_, t)| t.special && t.content == *name)
                .map(|(&id, _)| id)
        });
        Ok(Tokenizer {
            kind: Kind::Hf(Box::new(inner)),
            source,
            id_limit,
            eos,
        })
    }

    /// The fallback when no tokenizer is given: each UTF-8 byte is one id (vocab 256, no EOS).
    pub fn byte_level() -> Self {
        Tokenizer {
            kind: Kind::Bytes,
            source: BYTE_LEVEL.into(),
            id_limit: 256,
            eos: None,
        }
    }

    /// The ids a model's embedding must cover: one past the largest id (added tokens included).
    /// A model's vocab may be larger (mamba-*-hf pads GPT-NeoX's 50,277 to 50,280).
    pub fn vocab_size(&self) -> usize {
        self.id_limit as usize
    }

    /// The end-of-text id, if the tokenizer declares one of the usual names as a special token.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// The file it was loaded from, or "byte-level tokenizer".
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Text to ids, without adding special tokens (no BOS/EOS): callers decide where documents
    /// start and end. Special tokens written in the text (e.g. `<|endoftext|>`) are still recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match &self.kind {
            Kind::Bytes => Ok(text.bytes().map(u32::from).collect()),
            Kind::Hf(t) => t
                .encode_fast(text, false)
                .map(|enc| enc.get_ids().to_vec())
                .map_err(|e| self.err(format!("cannot encode text: {e}"))),
        }
    }

    /// Ids to text, special tokens included. Bytes that are not valid UTF-8 become U+FFFD.
    /// An id the tokenizer does not know is an error naming the id and its position.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some((position, &id)) = ids.iter().enumerate().find(|&(_, &id)| id >= self.id_limit)
        {
            return Err(Error::IdOutOfRange {
                op: "tokenizer.decode",
                id,
                position,
                limit: self.id_limit as usize,
            });
        }
        match &self.kind {
            // ids are < 256 here, so the casts are exact.
            Kind::Bytes => Ok(String::from_utf8_lossy(
                &ids.iter().map(|&b| b as u8).collect::<Vec<_>>(),
            )
            .into_owned()),
            Kind::Hf(t) => t
                .decode(ids, false)
                .map_err(|e| self.err(format!("cannot decode ids: {e}"))),
        }
    }

    /// Writes the tokenizer as a Hugging Face `tokenizer.json`, atomically. The byte-level
    /// fallback has no file form, so saving it is an error.
    pub fn save(&self, path: &Path) -> Result<()> {
        match &self.kind {
            Kind::Bytes => {
                Err(self.err("the byte-level fallback has no tokenizer.json form".into()))
            }
            Kind::Hf(t) => {
                let json = t
                    .to_string(false)
                    .map_err(|e| self.err(format!("cannot serialise: {e}")))?;
                write_atomic(path, json.as_bytes())
            }
        }
    }

    /// Exact incremental UTF-8 is only possible for the byte-level tokenizer (see `stream.rs`).
    pub(crate) fn is_byte_level(&self) -> bool {
        matches!(self.kind, Kind::Bytes)
    }

    fn err(&self, detail: String) -> Error {
        Error::Tokenizer {
            file: self.source.clone(),
            detail,
        }
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("source", &self.source)
            .field("vocab_size", &self.id_limit)
            .field("eos", &self.eos)
            .finish()
    }
}
