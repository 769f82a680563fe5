//! `crsm-train tokenizer`: trains a byte-level BPE tokenizer (`<|endoftext|>` = id 0) on text and
//! JSONL files and writes it as a Hugging Face `tokenizer.json`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use crsm::data::{MAX_VOCAB, MIN_VOCAB, train_bpe};

#[derive(Args)]
pub struct TokenizerArgs {
    /// Corpus files or directories (*.txt, *.jsonl); a bad JSONL line is an error.
    #[arg(long, num_args = 1.., required = true)]
    corpus: Vec<PathBuf>,
    /// Vocabulary size, at least 257 (256 bytes + <|endoftext|>).
    #[arg(long)]
    vocab_size: usize,
    /// Output tokenizer.json.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: TokenizerArgs) -> Result<()> {
    // Before the corpus is read (minutes on a large one), and naming the flag.
    if !(MIN_VOCAB..=MAX_VOCAB).contains(&args.vocab_size) {
        anyhow::bail!(
            "--vocab-size {} must be between {MIN_VOCAB} and {MAX_VOCAB}",
            args.vocab_size
        );
    }
    let tok = train_bpe(&args.corpus, args.vocab_size).context("training the tokenizer")?;
    tok.save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "tokenizer: {} ids (asked {}), eos {:?} -> {}",
        tok.vocab_size(),
        args.vocab_size,
        tok.eos_id(),
        args.out.display()
    );
    Ok(())
}
