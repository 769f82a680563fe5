//! The planner's rollout kernels, the readable reference: per-row top-k, Gumbel-max sampling and
//! the policy's certainty. Shapes: logits [B, V] (every leading dimension flattened into rows).
//! Forward only: these run at inference (the planner's expansions), nothing differentiates them.
//! Rows run in parallel with rayon when the logits are large, as the other cpu kernels do.

use rayon::prelude::*;

use super::elementwise::PAR_MIN;
use crate::backend::params::SampleDraw;
use crate::rng::{counter_bits, gumbel_of_uniform, uniform_of_bits};

/// `f` applied to every row of `v` values, one result per row, in parallel for large inputs.
fn per_row<T: Send>(x: &[f32], v: usize, f: impl Fn(usize, &[f32]) -> T + Sync) -> Vec<T> {
    if x.len() >= PAR_MIN {
        x.par_chunks(v)
            .enumerate()
            .map(|(r, row)| f(r, row))
            .collect()
    } else {
        x.chunks(v).enumerate().map(|(r, row)| f(r, row)).collect()
    }
}

/// The order every rollout kernel ranks by: a higher value first, and of equal values the lower
/// index (so ties resolve the same way on every device, whatever order the work ran in).
#[inline]
pub fn ranks_before(a: (f32, u32), b: (f32, u32)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

// ---- top_k ---------------------------------------------------------------------------------------

/// logits [B, v] -> (values [B, k], indices [B, k]): each row's k largest values in descending
/// order, ties by the lower index. With `log_probs`, the values are log-softmax probabilities
/// under the whole row (value - max - log sum_j exp(x_j - max)) instead of raw logits: the
/// planner's priors, without writing a [B, v] log-softmax first.
pub fn top_k(x: &[f32], v: usize, k: usize, log_probs: bool) -> (Vec<f32>, Vec<u32>) {
    let rows = per_row(x, v, |_, row| {
        // Insertion into a sorted list of at most k: the common case is one comparison against
        // the current k-th and a rejection.
        let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        for (j, &value) in row.iter().enumerate() {
            let c = (value, j as u32);
            if best.len() == k && !ranks_before(c, best[k - 1]) {
                continue;
            }
            let at = best.partition_point(|&b| ranks_before(b, c));
            best.insert(at, c);
            best.truncate(k);
        }
        if log_probs {
            let (max, log_sum) = max_and_log_sum(row);
            for b in &mut best {
                b.0 = b.0 - max - log_sum;
            }
        }
        best
    });
    let mut values = Vec::with_capacity(rows.len() * k);
    let mut indices = Vec::with_capacity(rows.len() * k);
    for row in rows {
        for (value, index) in row {
            values.push(value);
            indices.push(index);
        }
    }
    (values, indices)
}

/// (max, ln sum_j exp(x_j - max)) of a row, the sum in f64.
fn max_and_log_sum(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&x| ((x - max) as f64).exp()).sum();
    (max, sum.ln() as f32)
}

// ---- sample_logits -------------------------------------------------------------------------------

/// logits [B, n] -> [B] token ids by the Gumbel-max trick: row b takes
///   argmax_j  logits[b, j] * (1 / temperature) + gumbel(seed, stream_base + b, counter * n + j)
/// (counters wrap mod 2^32), with `rng::counter_gumbel`'s draw; `temperature == 0` is the greedy
/// argmax. Ties go to the lower index. The scaled logit is one multiply by the reciprocal the op
/// computed (not a divide, which WGSL only holds to 2.5 ulp), then one add.
pub fn sample_logits(x: &[f32], n: usize, draw: SampleDraw) -> Vec<u32> {
    let greedy = draw.temperature == 0.0;
    let inv_t = 1.0 / draw.temperature;
    per_row(x, n, |b, row| {
        let stream = draw.stream_base.wrapping_add(b as u32);
        let base = draw.counter.wrapping_mul(n as u32);
        let mut best = (f32::NEG_INFINITY, u32::MAX);
        for (j, &logit) in row.iter().enumerate() {
            let score = if greedy {
                logit
            } else {
                let bits = counter_bits(draw.seed, stream, base.wrapping_add(j as u32));
                logit * inv_t + gumbel_of_uniform(uniform_of_bits(bits))
            };
            if ranks_before((score, j as u32), best) {
                best = (score, j as u32);
            }
        }
        // No candidate only when every score is NaN (unspecified input): still a valid id.
        if best.1 == u32::MAX { 0 } else { best.1 }
    })
}

// ---- certainty -----------------------------------------------------------------------------------

/// logits [B, v] -> [B]: the negative entropy of softmax(row), sum_j p_j ln p_j (<= 0; 0 for a
/// one-hot row, -ln v for a uniform one). With m = max, e_j = exp(x_j - m), S = sum e_j:
///   ln p_j = x_j - m - ln S,  so  sum_j p_j ln p_j = (sum_j e_j (x_j - m)) / S - ln S.
/// Two passes (the max, then both sums in f64), as the kernel does.
pub fn certainty(x: &[f32], v: usize) -> Vec<f32> {
    per_row(x, v, |_, row| {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let (mut s, mut t) = (0f64, 0f64);
        for &x in row {
            let d = (x - max) as f64;
            let e = d.exp();
            s += e;
            // exp(-inf) * -inf would be NaN; a -inf logit has p = 0 and adds nothing.
            if e > 0.0 {
                t += e * d;
            }
        }
        (t / s - s.ln()) as f32
    })
}
