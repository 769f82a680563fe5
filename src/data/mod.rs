//! Data: turning text into token ids and back. The tokenizer (a Hugging Face `tokenizer.json`, or
//! plain bytes when none is given) and streaming decode for generation.

mod stream;
mod tokenizer;

pub use stream::StreamDecoder;
pub use tokenizer::Tokenizer;
