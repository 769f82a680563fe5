//! Data: text to token ids and back, and training data on disk. The tokenizer (a Hugging Face
//! `tokenizer.json`, or plain bytes when none is given), streaming decode for generation, BPE
//! training, corpus reading, token shards and the batches a trainer draws from them.

mod batches;
mod bpe;
mod corpus;
mod prepare;
mod shards;
mod staging;
mod stream;
mod tokenizer;

pub use batches::{
    Batch, BatchStream, DataPosition, IGNORE, bits_per_byte, eval_batches, permutation,
};
pub use bpe::{END_OF_TEXT, MAX_VOCAB, MIN_VOCAB, train_bpe, train_bpe_on_texts};
pub use corpus::{
    BAD_LINES_KEPT, BadLine, BadLinePolicy, Corpus, CorpusReport, Document, Segment, alpaca,
    alpaca_prompt, for_each_batch, read_corpus,
};
pub use prepare::{
    BATCH_BYTES, PIECE_BYTES, PrepareSummary, ValSource, encode_in_pieces, prepare,
    prepare_in_batches, split_text, tokenize_documents,
};
pub use shards::{
    ShardHeader, SplitWriter, TokenDType, TokenShard, Tokenized, sha256_file, write_split,
};
pub use stream::StreamDecoder;
pub use tokenizer::Tokenizer;
