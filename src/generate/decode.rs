//! The generation loop: prefill the prompt, then sample a token, hand it to the caller, feed it
//! back, until EOS, a stop string or the token budget. The model is anything that turns ids into
//! next-token logits (`NextToken`), so the loop does not depend on the backbone or a device.
//! Not here: how a token is chosen (`sampling.rs`), the planner (which steers the model's state
//! between steps, behind `NextToken`).

use crate::data::{StreamDecoder, Tokenizer};
use crate::error::{Error, Result};
use crate::generate::{Sampler, SamplingConfig};

/// A recurrent language model seen from the generation loop.
pub trait NextToken {
    /// Consumes the whole prompt (at least one id) from a fresh state and returns the logits for
    /// the token after it (the last position's row).
    fn prefill(&mut self, prompt: &[u32]) -> Result<Vec<f32>>;
    /// Consumes one more id and returns the logits for the token after it.
    fn step(&mut self, id: u32) -> Result<Vec<f32>>;
    /// Told each id as soon as it is chosen, the last one included (which is never stepped):
    /// a deliberating model traces it.
    fn chosen(&mut self, _id: u32) -> Result<()> {
        Ok(())
    }
    /// After a step: Some(n) when the model rewound (autonomy) to the state after n generated
    /// ids; the logits that step returned are then those to continue from, and the loop drops
    /// the ids after the n-th. A wrapper around another `NextToken` must pass this (and `chosen`)
    /// through, or the loop and the model disagree on the text.
    fn take_rewind(&mut self) -> Option<usize> {
        None
    }
}

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// At most this many ids are generated (0: the model is not run).
    pub max_new_tokens: usize,
    pub sampling: SamplingConfig,
    /// Stop after generating this id (it is the last id returned).
    pub stop_on_eos: Option<u32>,
    /// Stop once the generated text contains one of these (needs a tokenizer). As HF's
    /// StopStringCriteria, the token that completes the string is the last id returned, and the
    /// text may run past the stop string within that token: cut it with `text.find(stop)`.
    pub stop_strings: Vec<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 128,
            sampling: SamplingConfig::default(),
            stop_on_eos: None,
            stop_strings: Vec::new(),
        }
    }
}

/// Generates up to `opts.max_new_tokens` ids after `prompt` and returns them (the prompt is not
/// included). `on_token` sees each id as soon as it is chosen, in order (for streaming: decode
/// with `Tokenizer::stream_decoder_after(prompt)`); an error from it stops generation and is
/// returned. `tokenizer` is needed only for `opts.stop_strings`.
///
/// The model is stepped with every generated id except the last (as HF's `generate`: nothing
/// reads the logits after it), so its state ends one id short of the output.
pub fn generate(
    model: &mut impl NextToken,
    prompt: &[u32],
    opts: &GenerateOptions,
    tokenizer: Option<&Tokenizer>,
    mut on_token: impl FnMut(u32) -> Result<()>,
) -> Result<Vec<u32>> {
    let bad = |detail: String| {
        Err(Error::InvalidArgument {
            op: "generate",
            detail,
        })
    };
    if prompt.is_empty() {
        // A recurrent model has nothing to condition the first token on; HF's Mamba needs an id
        // too. Start from the EOS / BOS id to generate unconditionally.
        return bad("the prompt is empty: give at least one id (e.g. the EOS id)".into());
    }
    let mut sampler = Sampler::new(opts.sampling.clone())?;
    let mut stops = match (tokenizer, opts.stop_strings.is_empty()) {
        (_, true) => None,
        (Some(tok), false) => Some(StopStrings::new(tok, prompt, &opts.stop_strings)?),
        (None, false) => {
            return bad(format!(
                "stop strings {:?} need a tokenizer, and none was given",
                opts.stop_strings
            ));
        }
    };
    if opts.max_new_tokens == 0 {
        return Ok(Vec::new());
    }

    let mut history = prompt.to_vec();
    let mut logits = model.prefill(prompt)?;
    let vocab = logits.len();
    loop {
        let id = sampler.sample(&logits, &history)?;
        history.push(id);
        model.chosen(id)?;
        on_token(id)?;
        let generated = history.len() - prompt.len();
        if Some(id) == opts.stop_on_eos || generated == opts.max_new_tokens {
            break;
        }
        if let Some(stops) = &mut stops
            && stops.push(id)?
        {
            break;
        }
        logits = model.step(id)?;
        if let Some(keep) = model.take_rewind() {
            history.truncate(prompt.len() + keep);
        }
        if logits.len() != vocab {
            return Err(Error::Shape {
                op: "generate",
                detail: format!(
                    "step returned {} logits after prefill returned {vocab}",
                    logits.len()
                ),
            });
        }
    }
    Ok(history.split_off(prompt.len()))
}

/// Watches the generated text for stop strings. Only the tail that could still take part in a
/// match is kept, so a long generation costs O(longest stop string) per token.
struct StopStrings<'a> {
    decoder: StreamDecoder<'a>,
    stops: &'a [String],
    longest: usize,
    tail: String,
}

impl<'a> StopStrings<'a> {
    fn new(tok: &'a Tokenizer, prompt: &[u32], stops: &'a [String]) -> Result<Self> {
        if stops.iter().any(String::is_empty) {
            let detail = "a stop string is empty (it would stop at once)".into();
            return Err(Error::InvalidArgument {
                op: "generate",
                detail,
            });
        }
        let longest = stops.iter().map(String::len).max().unwrap_or(0);
        Ok(StopStrings {
            decoder: tok.stream_decoder_after(prompt),
            stops,
            longest,
            tail: String::new(),
        })
    }

    /// Adds one id; true when a stop string now appears in the generated text.
    fn push(&mut self, id: u32) -> Result<bool> {
        // No stop string was in `tail` before, so a new match must end in the new text: it starts
        // at most longest - 1 bytes before it.
        let from =
            floor_char_boundary(&self.tail, self.tail.len().saturating_sub(self.longest - 1));
        self.tail.drain(..from);
        self.tail.push_str(&self.decoder.push(id)?);
        Ok(self.stops.iter().any(|s| self.tail.contains(s.as_str())))
    }
}

/// The largest char boundary of `s` at or below `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
