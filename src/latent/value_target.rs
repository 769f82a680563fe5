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

use crate::error::{Result, shape_err};

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
