//! Training a byte-level BPE tokenizer (GPT-2's scheme, with the `tokenizers` crate) on a corpus.
//! Byte level means every string encodes (the 256 byte symbols are always in the vocabulary) and
//! decoding gives back exactly the text encoded. `<|endoftext|>` is id 0, the document
//! separator `prepare` writes and `Tokenizer::eos_id` finds. Not here: applying a tokenizer
//! (`tokenizer.rs`).

use std::collections::HashSet;
use std::path::PathBuf;

use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer as HfTokenizer};

use super::Tokenizer;
use super::corpus::{BadLinePolicy, read_corpus};
use crate::error::{Error, Result};

/// The end-of-text token; trained first, so it gets id 0.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// The smallest vocabulary: the 256 byte symbols and `<|endoftext|>`.
pub const MIN_VOCAB: usize = 257;

/// The largest vocabulary trained: 2^21 ids, eight times the largest released tokenizers'. The
/// trainer reserves memory by the vocabulary it is asked for, so `--vocab-size 1000000000` would
/// abort in the allocator before reading a line.
pub const MAX_VOCAB: usize = 1 << 21;

/// Trains on the documents under `corpus_files` (files or directories, read as `read_corpus`
/// reads them: a bad JSONL line is an error). The result may have fewer than `vocab_size` ids
/// when the corpus has fewer distinct pairs to merge.
pub fn train_bpe(corpus_files: &[PathBuf], vocab_size: usize) -> Result<Tokenizer> {
    let corpus = read_corpus(corpus_files, BadLinePolicy::Fail)?;
    let texts = corpus.documents.iter().map(|d| {
        d.segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<String>()
    });
    train_bpe_on_texts(texts, vocab_size)
}

/// Trains on texts in memory (each one a document).
pub fn train_bpe_on_texts(
    texts: impl Iterator<Item = String> + Send,
    vocab_size: usize,
) -> Result<Tokenizer> {
    const SOURCE: &str = "trained byte-level BPE";
    let err = |detail: String| Error::Tokenizer {
        file: SOURCE.into(),
        detail,
    };
    if vocab_size < MIN_VOCAB {
        return Err(err(format!(
            "vocab size {vocab_size} is below {MIN_VOCAB} (256 bytes + {END_OF_TEXT})"
        )));
    }
    if vocab_size > MAX_VOCAB {
        return Err(err(format!(
            "vocab size {vocab_size} is above the maximum of {MAX_VOCAB}"
        )));
    }
    let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(0)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(alphabet)
        .build()
        .into();
    // No prefix space: GPT-2's setting, and what makes decode(encode(text)) == text.
    let byte_level = ByteLevel::new(false, true, true);
    let mut hf = HfTokenizer::new(BPE::default());
    hf.with_pre_tokenizer(Some(byte_level))
        .with_decoder(Some(byte_level));
    hf.train(&mut trainer, texts)
        .map_err(|e| err(format!("training failed: {e}")))?;
    Tokenizer::from_hf(hf, SOURCE)
}
