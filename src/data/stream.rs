//! Streaming decode: ids arrive one at a time (from generation) and each call returns only the new,
//! complete text to print. A character split across tokens (byte-level BPE splits é, 日, emoji
//! into several tokens) is held back until its last byte arrives, so the printed pieces
//! concatenate to exactly what `Tokenizer::decode` gives for all the ids.

use crate::data::Tokenizer;
use crate::error::{Error, Result};

/// How many ids of a prompt to decode as context before the first new id (as text-generation-
/// inference does): decoders such as SentencePiece's Metaspace render a token differently at
/// the start of a text than after other tokens.
const CONTEXT_IDS: usize = 5;

pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    /// Hugging Face tokenizers: a sliding window of ids. `ids[..read]` is context already printed
    /// (or the prompt's tail), older ids are dropped; `ids[read..]` waits for a complete character.
    ids: Vec<u32>,
    read: usize,
    /// Byte-level tokenizer: the bytes of an incomplete character.
    pending: Vec<u8>,
    /// Ids pushed so far, to name the position of a bad id.
    pushed: usize,
}

impl Tokenizer {
    /// A streaming decoder for a text that starts here.
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        self.stream_decoder_after(&[])
    }

    /// A streaming decoder for ids that continue `context` (e.g. the prompt): the context's text is
    /// not returned, but its last few ids are decoded with the new ones so the joint is rendered
    /// as the full decode would render it.
    pub fn stream_decoder_after(&self, context: &[u32]) -> StreamDecoder<'_> {
        let ids = if self.is_byte_level() {
            Vec::new()
        } else {
            context[context.len().saturating_sub(CONTEXT_IDS)..].to_vec()
        };
        let read = ids.len();
        StreamDecoder {
            tok: self,
            ids,
            read,
            pending: Vec::new(),
            pushed: 0,
        }
    }
}

impl StreamDecoder<'_> {
    /// Adds one id; returns the text it completes (often empty while a character is incomplete).
    pub fn push(&mut self, id: u32) -> Result<String> {
        if id as usize >= self.tok.vocab_size() {
            let limit = self.tok.vocab_size();
            return Err(Error::IdOutOfRange {
                op: "tokenizer.stream_decode",
                id,
                position: self.pushed,
                limit,
            });
        }
        self.pushed += 1;
        if self.tok.is_byte_level() {
            // id < 256 was checked above.
            self.pending.push(id as u8);
            return Ok(self.take_complete_utf8());
        }
        self.ids.push(id);
        let (text, done) = self.decode_window()?;
        if !done {
            return Ok(String::new());
        }
        // Keep the ids just printed as the next call's context; drop the older ones.
        self.ids.drain(..self.read);
        self.read = self.ids.len();
        Ok(text)
    }

    /// Ends the stream: returns whatever is still held back, an incomplete character as U+FFFD.
    pub fn finish(&mut self) -> Result<String> {
        if self.tok.is_byte_level() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.pending.clear();
            return Ok(text);
        }
        let (text, _) = self.decode_window()?;
        self.ids.drain(..self.read);
        self.read = self.ids.len();
        Ok(text)
    }

    /// Hugging Face: decodes the window with and without the waiting ids and returns the new text
    /// and whether it is complete. A trailing U+FFFD means the last character's bytes are not all
    /// there yet (the byte-level decoders decode lossily); the window grows until they are. A
    /// genuine U+FFFD at the end is therefore printed one id late, or by `finish`.
    fn decode_window(&self) -> Result<(String, bool)> {
        let before = self.tok.decode(&self.ids[..self.read])?;
        let after = self.tok.decode(&self.ids)?;
        // Usually `after` starts with `before`; when the context ended inside a character (its
        // U+FFFD now replaced by the whole character) print from where they first differ.
        let common = before
            .char_indices()
            .zip(after.chars())
            .find(|&((_, a), b)| a != b)
            .map_or(before.len().min(after.len()), |((i, _), _)| i);
        // `common` is a char boundary of `before`, and `after` has the same chars up to it.
        let new = after.get(common..).unwrap_or("").to_string();
        let done = !after.ends_with('\u{FFFD}');
        Ok((new, done))
    }

    /// Byte level: moves every complete character out of `pending`, turning bytes that can never
    /// be valid UTF-8 into U+FFFD exactly as `String::from_utf8_lossy` does.
    fn take_complete_utf8(&mut self) -> String {
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // The bytes at the end start a character that is not finished yet.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }
}
