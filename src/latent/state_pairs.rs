//! Counterfactual state pairs: what the delta broadcaster learns from and is judged on.
//!
//! The planner proposes a target latent for a step (the latent after another token than the one
//! generation took); injection needs the SSM states that would give it. A pair records exactly
//! that at position t of a window: the real step (token x_t from the state after x_{..t}) and a
//! counterfactual step from the same state with another token x' drawn from the model's own top-k
//! at t (as the planner's actions are), each step's latents z and SSM states h for every layer.
//! The broadcaster learns h' - h from (h, z, z'); the evaluation replays the windows to see where
//! one more step from the proposed states goes.
//!
//! Positions are the same in every window (spread past its first quarter, see `positions`), so
//! the windows of a batch advance together through one prefill per pair.

use crate::autograd::no_grad;
use crate::error::{Result, shape_err};
use crate::model::Backbone;
use crate::state::State;
use crate::tensor::Tensor;

/// How the pairs of a window are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairPlan {
    /// Pairs per window.
    pub per_window: usize,
    /// The counterfactual token is drawn from the model's top-k at t, excluding the real one.
    pub top_k: usize,
    pub seed: u64,
}

/// `count` pairs, every field row-major in pair order.
#[derive(Clone, Debug, PartialEq)]
pub struct StatePairs {
    pub count: usize,
    pub layers: usize,
    pub d_model: usize,
    pub d_inner: usize,
    pub d_state: usize,
    /// The window each pair comes from (index within the collected windows) and its position t.
    pub window: Vec<u32>,
    pub position: Vec<u32>,
    /// The counterfactual token x'.
    pub alt_token: Vec<u32>,
    /// [count, layers, d_model]: the latents after x_t, and after x'.
    pub z: Vec<f32>,
    pub z_alt: Vec<f32>,
    /// [count, layers, d_inner, d_state]: the SSM states after x_t, and after x'.
    pub h: Vec<f32>,
    pub h_alt: Vec<f32>,
}

impl StatePairs {
    pub fn empty(layers: usize, d_model: usize, d_inner: usize, d_state: usize) -> Self {
        StatePairs {
            count: 0,
            layers,
            d_model,
            d_inner,
            d_state,
            window: Vec::new(),
            position: Vec::new(),
            alt_token: Vec::new(),
            z: Vec::new(),
            z_alt: Vec::new(),
            h: Vec::new(),
            h_alt: Vec::new(),
        }
    }

    /// Values of one pair's z (all layers).
    pub fn z_len(&self) -> usize {
        self.layers * self.d_model
    }

    /// Values of one pair's h (all layers).
    pub fn h_len(&self) -> usize {
        self.layers * self.d_inner * self.d_state
    }

    /// Appends pair `i` of `other` (same shapes).
    pub fn push_from(&mut self, other: &StatePairs, i: usize) {
        let (zn, hn) = (self.z_len(), self.h_len());
        self.window.push(other.window[i]);
        self.position.push(other.position[i]);
        self.alt_token.push(other.alt_token[i]);
        self.z.extend_from_slice(&other.z[i * zn..][..zn]);
        self.z_alt.extend_from_slice(&other.z_alt[i * zn..][..zn]);
        self.h.extend_from_slice(&other.h[i * hn..][..hn]);
        self.h_alt.extend_from_slice(&other.h_alt[i * hn..][..hn]);
        self.count += 1;
    }

    /// Appends every pair of `other`, its windows renumbered after `window_offset`.
    pub fn extend(&mut self, other: StatePairs, window_offset: u32) {
        self.window
            .extend(other.window.iter().map(|w| w + window_offset));
        self.position.extend(other.position);
        self.alt_token.extend(other.alt_token);
        self.z.extend(other.z);
        self.z_alt.extend(other.z_alt);
        self.h.extend(other.h);
        self.h_alt.extend(other.h_alt);
        self.count += other.count;
    }
}

/// Real tokens the held-out evaluation reads after a pair's position (`broadcast_fit`): past the
/// conv window (K - 1 = 3 inputs at the usual K = 4), so the later steps show what the SSM state
/// alone carries.
pub const REPLAY_STEPS: usize = 4;

/// The shortest window that holds two pairs and their replay.
pub const MIN_WINDOW: usize = REPLAY_STEPS + 3;

/// The range pair positions are drawn from in a window of `len` tokens: [len / 4, len - 1 -
/// REPLAY_STEPS] (past the first quarter, so the state has context; early enough that the
/// evaluation has `REPLAY_STEPS` next tokens). Empty when the window is too short.
fn span(len: usize) -> std::ops::RangeInclusive<usize> {
    (len / 4).max(1)..=len.saturating_sub(1 + REPLAY_STEPS)
}

/// How many distinct pair positions a window of `len` tokens holds.
pub fn max_pairs(len: usize) -> usize {
    span(len).count()
}

/// The pair positions of a window of `len` tokens: `per_window` (at most `max_pairs(len)`)
/// distinct positions spread evenly over `span(len)`, in increasing order.
pub fn positions(len: usize, per_window: usize) -> Vec<usize> {
    let range = span(len);
    let (lo, n) = (*range.start(), range.count());
    (0..per_window).map(|p| lo + p * n / per_window).collect()
}

/// A uniform number in [0, 1) from (seed, window, pair): counter-based, so the draw of a pair
/// does not depend on how the windows were batched.
fn draw(seed: u64, window: u64, pair: u64) -> f64 {
    let mut z = seed
        ^ window.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ pair.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The counterfactual token: drawn in proportion to the model's probabilities among its top-k
/// tokens other than `real`.
fn alternative(logits: &[f32], real: u32, top_k: usize, u: f64) -> u32 {
    let mut order: Vec<u32> = (0..logits.len() as u32).filter(|&t| t != real).collect();
    let k = top_k.min(order.len());
    order.select_nth_unstable_by(k - 1, |a, b| {
        logits[*b as usize].total_cmp(&logits[*a as usize])
    });
    order.truncate(k);
    order.sort_unstable_by(|a, b| logits[*b as usize].total_cmp(&logits[*a as usize]));
    let top = logits[order[0] as usize] as f64;
    let weights: Vec<f64> = order
        .iter()
        .map(|&t| (logits[t as usize] as f64 - top).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut target = u * total;
    for (t, w) in order.iter().zip(&weights) {
        if target < *w {
            return *t;
        }
        target -= w;
    }
    *order.last().expect("k >= 1")
}

/// Every layer's latent [B, D] and SSM state [B, E, N] of a batch as host rows: appends row r's
/// values (all layers) to `z` and `h`.
fn append_rows(
    latents: &[Tensor],
    state: &State,
    z: &mut Vec<f32>,
    h: &mut Vec<f32>,
) -> Result<()> {
    let zs = latents
        .iter()
        .map(|t| t.to_vec_f32())
        .collect::<Result<Vec<_>>>()?;
    let hs = state
        .layers
        .iter()
        .map(|l| l.ssm.to_vec_f32())
        .collect::<Result<Vec<_>>>()?;
    let b = state.batch();
    let (zn, hn) = (zs[0].len() / b, hs[0].len() / b);
    for r in 0..b {
        for zl in &zs {
            z.extend_from_slice(&zl[r * zn..][..zn]);
        }
        for hl in &hs {
            h.extend_from_slice(&hl[r * hn..][..hn]);
        }
    }
    Ok(())
}

/// Collects the pairs of `tokens` [windows, len] from `model` (no gradients), `batch` windows at
/// a time; `first_window` numbers the windows for the draws (their index in the whole plan).
pub fn collect_pairs(
    model: &Backbone,
    tokens: &[u32],
    len: usize,
    batch: usize,
    plan: PairPlan,
    first_window: usize,
) -> Result<StatePairs> {
    let c = &model.config;
    if plan.per_window > max_pairs(len)
        || batch == 0
        || plan.top_k == 0
        || !tokens.len().is_multiple_of(len)
    {
        return shape_err(
            "collect_pairs",
            format!(
                "{} tokens in windows of {len} (room for {} pairs, {} asked), batch {batch}, \
                 top_k {} (>= 1)",
                tokens.len(),
                max_pairs(len),
                plan.per_window,
                plan.top_k
            ),
        );
    }
    let _off = no_grad();
    let device = model.device();
    let windows = tokens.len() / len;
    let at = positions(len, plan.per_window);
    let mut out = StatePairs::empty(c.applications(), c.hidden_size, c.d_inner(), c.state_size);
    // Pairs are stored window-major (window w's pairs p = 0.. together), so gather per batch and
    // reorder.
    for first in (0..windows).step_by(batch) {
        let b = batch.min(windows - first);
        let rows = &tokens[first * len..(first + b) * len];
        let column = |t: usize| -> Vec<u32> { (0..b).map(|r| rows[r * len + t]).collect() };
        let mut state = model.new_state(b)?;
        let mut consumed = 0;
        let mut last_logits = Vec::new();
        let mut per_pair = Vec::with_capacity(at.len());
        for (p, &t) in at.iter().enumerate() {
            // The logits for x_t: from a prefill of the tokens since the last pair, or, when this
            // pair follows right after it, from its real step.
            let logits = if t > consumed {
                let prefix: Vec<u32> = (0..b)
                    .flat_map(|r| rows[r * len + consumed..r * len + t].iter().copied())
                    .collect();
                let ids = Tensor::from_u32(prefix, &[b, t - consumed], &device)?;
                model.prefill_last(&ids, &mut state)?.to_vec_f32()?
            } else {
                std::mem::take(&mut last_logits)
            };
            let real = column(t);
            let vocab = logits.len() / b;
            let alt: Vec<u32> = (0..b)
                .map(|r| {
                    let u = draw(plan.seed, (first_window + first + r) as u64, p as u64);
                    alternative(&logits[r * vocab..][..vocab], real[r], plan.top_k, u)
                })
                .collect();
            let mut cf = state.snapshot()?;
            let (real_logits, z_real) =
                model.step_latents(&Tensor::from_u32(real, &[b], &device)?, &mut state)?;
            last_logits = real_logits.to_vec_f32()?;
            let (_, z_cf) =
                model.step_latents(&Tensor::from_u32(alt.clone(), &[b], &device)?, &mut cf)?;
            let mut chunk = StatePairs::empty(out.layers, out.d_model, out.d_inner, out.d_state);
            append_rows(&z_real, &state, &mut chunk.z, &mut chunk.h)?;
            append_rows(&z_cf, &cf, &mut chunk.z_alt, &mut chunk.h_alt)?;
            chunk.count = b;
            chunk.window = (0..b as u32).map(|r| (first as u32) + r).collect();
            chunk.position = vec![t as u32; b];
            chunk.alt_token = alt;
            per_pair.push(chunk);
            consumed = t + 1;
        }
        for r in 0..b {
            for chunk in &per_pair {
                out.push_from(chunk, r);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_leave_context_and_a_next_token() {
        assert_eq!(positions(64, 2), vec![16, 38]);
        assert_eq!(max_pairs(MIN_WINDOW), 2);
        for len in [MIN_WINDOW, 9, 64, 100] {
            for per in 1..=max_pairs(len) {
                let at = positions(len, per);
                assert!(at.windows(2).all(|w| w[0] < w[1]), "len {len}: {at:?}");
                for t in at {
                    assert!(
                        t >= 1 && t + REPLAY_STEPS < len,
                        "len {len} per {per}: t {t}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_alternative_is_never_the_real_token_and_follows_the_probabilities() {
        let logits = [0.0f32, 3.0, 2.0, -1.0, 2.9];
        let mut counts = [0usize; 5];
        for i in 0..2000 {
            let t = alternative(&logits, 1, 2, draw(7, i, 0));
            counts[t as usize] += 1;
        }
        // Top-2 without token 1: tokens 4 (e^2.9) and 2 (e^2.0), about 71% / 29%.
        assert_eq!(counts[1] + counts[0] + counts[3], 0);
        let share = counts[4] as f64 / 2000.0;
        assert!((share - 0.711).abs() < 0.04, "share of token 4: {share}");
    }
}
