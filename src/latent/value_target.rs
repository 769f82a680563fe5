//! What the critic learns to predict on text: the backbone's own discounted log-likelihood of the
//! next H tokens, normalised per token,
//!
//! ```text
//! v_t = sum_{j<H} gamma^j log p(x_{t+j+1} | x_{<=t+j})  /  sum_{j<H} gamma^j
//! ```
//!
//! read at the latent after token t (so it is the value of the state the planner would steer).
//! Positions with fewer than H tokens after them in their window have no target. On task data
//! the target is instead the task reward of sampled completions (the reasoning-suite issue).

use super::critic::certainty;
use super::fit::PolicyHead;
use super::trace::LatentTrace;
use crate::error::{Error, Result, shape_err};

/// The discounted, per-token-normalised log-likelihood targets of one window: `log_probs[t]` is
/// log p(x_{t+1} | x_{<=t}) for t in 0..len-1; the result has one value per t with H of them
/// ahead, i.e. `len - horizon` values.
pub fn discounted_log_likelihood(
    log_probs: &[f32],
    horizon: usize,
    gamma: f32,
) -> Result<Vec<f32>> {
    if horizon == 0 || !(gamma > 0.0 && gamma <= 1.0) {
        return shape_err(
            "value_target",
            format!("horizon {horizon} must be >= 1 and gamma {gamma} in (0, 1]"),
        );
    }
    let weights: Vec<f64> = (0..horizon)
        .map(|j| (gamma as f64).powi(j as i32))
        .collect();
    let norm: f64 = weights.iter().sum();
    let n = log_probs.len().saturating_sub(horizon - 1);
    Ok((0..n)
        .map(|t| {
            let v: f64 = weights
                .iter()
                .zip(&log_probs[t..t + horizon])
                .map(|(w, lp)| w * *lp as f64)
                .sum();
            (v / norm) as f32
        })
        .collect())
}

/// What the critic reads and learns at every position of a trace, [windows * len] each.
pub struct TraceValues {
    /// The value target; NaN where fewer than `horizon` tokens follow in the window.
    pub values: Vec<f32>,
    /// The policy's certainty (`critic::certainty`) at the position.
    pub certainty: Vec<f32>,
}

/// The value target and the policy's certainty at every position of every window of `trace`,
/// read through `head` (the backbone's own head at the real latents gives
/// log p(x_{t+1} | x_{<=t})).
pub fn trace_values(
    head: &dyn PolicyHead,
    trace: &LatentTrace,
    horizon: usize,
    gamma: f32,
) -> Result<TraceValues> {
    let n = trace.layers * trace.d_model;
    let mut out = vec![f32::NAN; trace.windows * trace.len];
    let mut certainties = Vec::with_capacity(trace.windows * trace.len);
    for w in 0..trace.windows {
        let raw = &trace.z[w * trace.len * n..][..trace.len * n];
        let log_probs = head.log_probs(raw, trace.len)?;
        if let Some(at) = log_probs
            .iter()
            .position(|v| v.is_nan() || *v == f32::INFINITY)
        {
            let vocab = log_probs.len() / trace.len;
            return Err(Error::Data {
                file: "value targets".into(),
                line: None,
                detail: format!(
                    "the head gave a NaN log-probability in window {w} at position {}: the \
                     checkpoint or its traces are broken",
                    at / vocab
                ),
            });
        }
        let vocab = log_probs.len() / trace.len;
        certainties.extend(log_probs.chunks_exact(vocab).map(certainty));
        let next: Vec<f32> = (0..trace.len - 1)
            .map(|t| log_probs[t * vocab + trace.token(w, t + 1) as usize])
            .collect();
        if next.len() < horizon {
            continue;
        }
        for (t, v) in discounted_log_likelihood(&next, horizon, gamma)?
            .into_iter()
            .enumerate()
        {
            out[w * trace.len + t] = v;
        }
    }
    Ok(TraceValues {
        values: out,
        certainty: certainties,
    })
}
