//! Choosing the next token from one row of logits, on the host. The processors and their order are
//! those of HF transformers' `generate` (generation/logits_process.py): repetition penalty, then
//! (when sampling) temperature, top-k, top-p, then a draw from the softmax of what is left.
//! Not here: the generation loop (`decode.rs`).

use crate::error::{Error, Result};
use crate::rng::Rng;

/// How to pick each token. `Default` is greedy decoding, as HF's `GenerationConfig` is.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    /// 0 = greedy: the argmax after the repetition penalty (HF `do_sample=False`, where temperature,
    /// top-k and top-p are not applied). Otherwise logits are divided by it before sampling.
    pub temperature: f32,
    /// Keep only the k highest logits (and any tied with the k-th, as HF's TopKLogitsWarper); 0 = off.
    pub top_k: usize,
    /// Nucleus: keep the fewest most likely tokens whose probability reaches `top_p` (at least one);
    /// 1.0 = off. Must be in (0, 1].
    pub top_p: f32,
    /// HF RepetitionPenaltyLogitsProcessor: for every id already in the prompt or the output, a
    /// positive logit is divided by it and a negative one multiplied; 1.0 = off. Must be > 0.
    pub repetition_penalty: f32,
    /// Seeds the generator: the same seed, config and logits give the same tokens.
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
        }
    }
}

impl SamplingConfig {
    pub fn greedy() -> Self {
        Self::default()
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::InvalidArgument {
                op: "sampling",
                detail,
            })
        };
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(format!(
                "temperature must be finite and >= 0 (0 = greedy), got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!(
                "top_p must be in (0, 1] (1 = off), got {}",
                self.top_p
            ));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad(format!(
                "repetition_penalty must be finite and > 0 (1 = off), got {}",
                self.repetition_penalty
            ));
        }
        Ok(())
    }
}

/// A `SamplingConfig` with its random stream. One per generated sequence.
#[derive(Clone, Debug)]
pub struct Sampler {
    config: SamplingConfig,
    rng: Rng,
}

impl Sampler {
    pub fn new(config: SamplingConfig) -> Result<Self> {
        config.validate()?;
        let rng = Rng::new(config.seed);
        Ok(Sampler { config, rng })
    }

    pub fn config(&self) -> &SamplingConfig {
        &self.config
    }

    /// The next id. `logits` is one row over the vocabulary; `history` is every id so far (prompt
    /// and output), which the repetition penalty reads.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> Result<u32> {
        let dist = self.probabilities(logits, history)?;
        // Inverse CDF over the kept tokens, most likely first. `dist` is never empty; if rounding
        // leaves `u` past the last bucket, the last kept token is the right answer.
        let u = self.rng.uniform() as f64;
        let mut acc = 0.0f64;
        for &(id, p) in &dist {
            acc += p as f64;
            if u < acc {
                return Ok(id);
            }
        }
        Ok(dist[dist.len() - 1].0)
    }

    /// The distribution `sample` draws from: the kept ids with their renormalised probabilities,
    /// most likely first (ties by id). Greedy gives the argmax with probability 1.
    pub fn probabilities(&self, logits: &[f32], history: &[u32]) -> Result<Vec<(u32, f32)>> {
        check_logits(logits)?;
        let cfg = &self.config;
        let mut scores = logits.to_vec();
        if cfg.repetition_penalty != 1.0 {
            repetition_penalty(&mut scores, history, cfg.repetition_penalty)?;
        }
        if cfg.is_greedy() {
            return Ok(vec![(argmax(&scores)?, 1.0)]);
        }
        // -inf logits (masked by the caller) can never be drawn; check_logits saw a finite one.
        // A positive temperature keeps the order, so we sort and cut on the raw scores and divide
        // only differences (s - max) by it, which cannot overflow to inf.
        let mut kept: Vec<(u32, f32)> = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_finite())
            .map(|(i, &s)| (i as u32, s))
            .collect();
        kept.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if cfg.top_k > 0 && cfg.top_k < kept.len() {
            // HF removes only scores strictly below the k-th largest, so ties with it stay.
            let kth = kept[cfg.top_k - 1].1;
            kept.retain(|&(_, s)| s >= kth);
        }
        // Softmax of score / temperature over what is kept; kept[0] holds the maximum.
        let (max, t) = (kept[0].1 as f64, cfg.temperature as f64);
        let mut probs: Vec<f64> = kept
            .iter()
            .map(|&(_, s)| ((s as f64 - max) / t).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if cfg.top_p < 1.0 {
            // HF's TopPLogitsWarper drops a token when the mass at or below it (ascending) is
            // <= 1 - top_p, i.e. keeps it when the mass strictly above it is < top_p: the
            // smallest set, in order, whose mass reaches top_p. The first token is always kept.
            let mut above = 0.0f64;
            let mut n = 0;
            while n < probs.len() && (n == 0 || above < cfg.top_p as f64) {
                above += probs[n];
                n += 1;
            }
            kept.truncate(n);
            probs.truncate(n);
            let total: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= total);
        }
        Ok(kept
            .iter()
            .zip(&probs)
            .map(|(&(id, _), &p)| (id, p as f32))
            .collect())
    }
}

/// The index of the largest logit, the first one on ties (as `torch.argmax`).
pub fn argmax(logits: &[f32]) -> Result<u32> {
    check_logits(logits)?;
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    Ok(best as u32)
}

/// HF RepetitionPenaltyLogitsProcessor: each distinct id seen is penalised once, however often it
/// occurs: `score < 0 ? score * penalty : score / penalty`.
fn repetition_penalty(scores: &mut [f32], history: &[u32], penalty: f32) -> Result<()> {
    let mut seen = vec![false; scores.len()];
    for (position, &id) in history.iter().enumerate() {
        let Some(done) = seen.get_mut(id as usize) else {
            return Err(Error::IdOutOfRange {
                op: "repetition_penalty",
                id,
                position,
                limit: scores.len(),
            });
        };
        if !*done {
            *done = true;
            let s = &mut scores[id as usize];
            *s = if *s < 0.0 { *s * penalty } else { *s / penalty };
        }
    }
    Ok(())
}

/// A row a model returns must be non-empty, free of NaN and +inf, and not entirely -inf.
fn check_logits(logits: &[f32]) -> Result<()> {
    let bad = |detail: String| {
        Err(Error::InvalidArgument {
            op: "sample",
            detail,
        })
    };
    if logits.is_empty() {
        return bad("the logits row is empty".into());
    }
    if let Some(i) = logits
        .iter()
        .position(|x| x.is_nan() || *x == f32::INFINITY)
    {
        return bad(format!(
            "logit {i} of {} is {} (the model diverged?)",
            logits.len(),
            logits[i]
        ));
    }
    if logits.iter().all(|&x| x == f32::NEG_INFINITY) {
        return bad(format!(
            "all {} logits are -inf: nothing can be sampled",
            logits.len()
        ));
    }
    Ok(())
}
