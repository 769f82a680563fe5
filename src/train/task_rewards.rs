//! The critic's targets on a reasoning run: task reward. The stage-1 model answers problems by
//! sampling (its own distribution, so the value is that of the policy the planner starts from);
//! the verifier scores each answer 1 or 0; and every state from which an answer token was chosen
//! (from the last prompt token to the second-to-last generated token) gets that score as its
//! value target. Its mean over the answers from a state is the probability that the model,
//! left alone, solves the problem from there: what a leaf's value should estimate.
//!
//! The latents are re-read in one batched pass over the padded windows (the prompt after an EOS,
//! the completion, then EOS padding, which a causal model never looks back at).

use crate::data::Tokenizer;
use crate::error::{Error, Result};
use crate::generate::{SamplingConfig, Session};
use crate::latent::critic::certainty;
use crate::latent::fit::PolicyHead;
use crate::latent::{BackboneHead, LatentTrace};
use crate::model::Backbone;
use crate::tasks::{Problem, answer};
use crate::train::critic_task::ValuedTrace;

/// Windows of latents read at a time.
const BATCH: usize = 32;

/// One sampled answer: which problem, what the model wrote, whether the verifier accepted it.
pub struct SampledAnswer {
    pub problem: usize,
    pub ids: Vec<u32>,
    pub correct: bool,
}

/// The answers' windows with reward targets, and the share answered correctly.
pub struct RewardTrace {
    pub valued: ValuedTrace,
    pub success: f64,
    /// The answers, one window each, in window order (`samples` per problem, together).
    pub answers: Vec<SampledAnswer>,
}

impl RewardTrace {
    /// For each position with a target (in order), the answer token chosen from it: 0 for the
    /// first, so a report can say where in an answer the critic tells right from wrong.
    pub fn answer_steps(&self) -> Vec<usize> {
        self.answers.iter().flat_map(|a| 0..a.ids.len()).collect()
    }
}

/// `model` answers each of `problems` `samples` times (sampled at `temperature`, seeded by
/// `seed` and the answer's index, so one sample per problem draws what it always drew), and the
/// result as a trace with reward targets. Several samples per problem let a report compare
/// answers to the same problem: whether the critic tells a better continuation from a worse one,
/// not only an easy problem from a hard one.
#[allow(clippy::too_many_arguments)]
pub fn task_reward_trace(
    model: &Backbone,
    tokenizer: &Tokenizer,
    problems: &[Problem],
    samples: usize,
    max_tokens: usize,
    temperature: f32,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<RewardTrace> {
    let pad = tokenizer.eos_id().ok_or_else(|| Error::InvalidArgument {
        op: "task_reward_trace",
        detail: "the tokenizer has no EOS id to end answers with".into(),
    })?;
    if samples == 0 {
        return Err(Error::InvalidArgument {
            op: "task_reward_trace",
            detail: "0 samples per problem".into(),
        });
    }
    let mut rows = Vec::with_capacity(problems.len() * samples);
    for (i, problem) in problems.iter().enumerate() {
        for k in 0..samples {
            let mut session = Session::new(model)?;
            let sampling = SamplingConfig {
                temperature,
                seed: (seed.wrapping_mul(1_000_003)).wrapping_add((i * samples + k) as u64),
                ..SamplingConfig::default()
            };
            let a = answer::answer(&mut session, tokenizer, problem, max_tokens, sampling)?;
            rows.push(a);
            progress(rows.len());
        }
    }
    let len = rows
        .iter()
        .map(|a| a.prompt_ids.len() + a.ids.len())
        .max()
        .unwrap_or(0);
    let mut tokens = Vec::with_capacity(rows.len() * len);
    let mut values = vec![f32::NAN; rows.len() * len];
    for (w, a) in rows.iter().enumerate() {
        let start = tokens.len();
        tokens.extend(&a.prompt_ids);
        tokens.extend(&a.ids);
        tokens.resize(start + len, pad);
        let reward = if a.correct { 1.0 } else { 0.0 };
        // States from which a generated token was chosen: after the prompt's last token, and
        // after each generated token but the last.
        let first = a.prompt_ids.len() - 1;
        for t in first..first + a.ids.len() {
            values[w * len + t] = reward;
        }
    }
    let trace = LatentTrace::collect(model, &tokens, len, BATCH)?;
    let head = BackboneHead(model);
    let n = trace.layers * trace.d_model;
    let mut certainties = Vec::with_capacity(values.len());
    for w in 0..trace.windows {
        let raw = &trace.z[w * len * n..][..len * n];
        let log_probs = head.log_probs(raw, len)?;
        let vocab = log_probs.len() / len;
        certainties.extend(log_probs.chunks_exact(vocab).map(certainty));
    }
    let success = rows.iter().filter(|a| a.correct).count() as f64 / rows.len().max(1) as f64;
    let answers = (rows.into_iter().enumerate())
        .map(|(w, a)| SampledAnswer {
            problem: w / samples,
            ids: a.ids,
            correct: a.correct,
        })
        .collect();
    Ok(RewardTrace {
        valued: ValuedTrace {
            trace,
            values,
            certainty: certainties,
        },
        success,
        answers,
    })
}
