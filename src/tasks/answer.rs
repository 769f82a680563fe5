//! A model answering one problem: the prompt as the model was trained to see it, a completion up
//! to EOS or a token budget, and the verifier's verdict. Shared by the critic's reward targets
//! (sampled answers of the stage-1 model) and `crsm-train eval` (any mode of deliberation), so
//! both read problems the same way.
//!
//! In the SFT shards every problem follows the previous one's EOS (`data::prepare`), so the
//! prompt is read after an EOS here too: the model starts from the state it learned to start
//! from. Without an EOS id the prompt is read alone.

use std::time::Instant;

use crate::data::Tokenizer;
use crate::error::Result;
use crate::generate::{GenerateOptions, NextToken, SamplingConfig, generate};

use super::problem::{Problem, verify};

/// One answer and its verdict.
#[derive(Clone, Debug)]
pub struct Answer {
    /// What the model read: [EOS] + the prompt's ids.
    pub prompt_ids: Vec<u32>,
    /// What it generated, the closing EOS included when it stopped on one.
    pub ids: Vec<u32>,
    /// The completion's text (the EOS left out).
    pub text: String,
    pub correct: bool,
    /// Milliseconds between consecutive generated tokens (the per-token latency; the first
    /// token, which waits for the prompt, is not in it).
    pub token_ms: Vec<f64>,
}

/// The ids the model reads before answering `prompt`.
pub fn prompt_ids(tokenizer: &Tokenizer, prompt: &str) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = tokenizer.eos_id().into_iter().collect();
    ids.extend(tokenizer.encode(prompt)?);
    Ok(ids)
}

/// `model` answers `problem` with at most `max_tokens` tokens, drawn by `sampling` (greedy for
/// evaluation); the answer is judged by the family's verifier, which sees only the prompt and
/// the completion.
pub fn answer(
    model: &mut impl NextToken,
    tokenizer: &Tokenizer,
    problem: &Problem,
    max_tokens: usize,
    sampling: SamplingConfig,
) -> Result<Answer> {
    let prompt = prompt_ids(tokenizer, &problem.prompt)?;
    let opts = GenerateOptions {
        max_new_tokens: max_tokens,
        sampling,
        stop_on_eos: tokenizer.eos_id(),
        stop_strings: Vec::new(),
    };
    let mut last: Option<Instant> = None;
    let mut token_ms = Vec::new();
    let ids = generate(model, &prompt, &opts, Some(tokenizer), |_| {
        let now = Instant::now();
        if let Some(t) = last {
            token_ms.push((now - t).as_secs_f64() * 1e3);
        }
        last = Some(now);
        Ok(())
    })?;
    let (text, correct) = match completion_text(tokenizer, &ids)? {
        Some(text) => {
            let correct = verify(problem, &text)?;
            (text, correct)
        }
        None => ("<an id the tokenizer cannot decode>".to_string(), false),
    };
    Ok(Answer {
        prompt_ids: prompt,
        ids,
        text,
        correct,
        token_ms,
    })
}

/// The text of generated `ids`, EOS left out; None when one is past the tokenizer's ids: a model
/// may have more ids than its tokenizer (a padded vocabulary), and such an id is no text, so the
/// answer is wrong rather than an error.
pub fn completion_text(tokenizer: &Tokenizer, ids: &[u32]) -> Result<Option<String>> {
    let text_ids: Vec<u32> = ids
        .iter()
        .copied()
        .filter(|&id| Some(id) != tokenizer.eos_id())
        .collect();
    if text_ids
        .iter()
        .any(|&id| (id as usize) >= tokenizer.vocab_size())
    {
        return Ok(None);
    }
    Ok(Some(tokenizer.decode(&text_ids)?))
}
