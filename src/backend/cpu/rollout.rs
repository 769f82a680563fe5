//! The planner's rollout kernels, the readable reference: per-row top-k, Gumbel-max sampling and
//! the policy's certainty. Shapes: logits [B, V] (every leading dimension flattened into rows).
//! Forward only: these run at inference (the planner's expansions), nothing differentiates them.
//! Rows run in parallel with rayon when the logits are large, as the other cpu kernels do.

use rayon::prelude::*;

use super::cross_entropy::LogSumExp;
use super::elementwise::PAR_MIN;
use super::simd::{self, Kernel};
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
            let (max, log_sum) = simd::dispatch(LogSumExp(row));
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

// ---- sample_logits -------------------------------------------------------------------------------

/// logits [B, n] -> [B] token ids by the Gumbel-max trick: row b takes
///   argmax_j  logits[b, j] * (1 / temperature) + gumbel(seed, stream_base + b, counter * n + j)
/// (counters wrap mod 2^32), with `rng::counter_gumbel`'s draw; `temperature == 0` is the greedy
/// argmax. Ties go to the lower index. The scaled logit is one multiply by the reciprocal the op
/// computed (not a divide, which WGSL only holds to 2.5 ulp), then one add.
pub fn sample_logits(x: &[f32], n: usize, draw: SampleDraw) -> Vec<u32> {
    per_row(x, n, |b, row| simd::dispatch(SampleRow { row, b, draw }))
}

/// One row's draw. The scores of a block of 16 columns are computed before any is compared, so
/// the hashes and logarithms vectorise (no op in them is fused or reordered: the bits are the
/// shader's).
struct SampleRow<'a> {
    row: &'a [f32],
    b: usize,
    draw: SampleDraw,
}

impl Kernel for SampleRow<'_> {
    type Output = u32;
    #[inline(always)]
    fn run(self) -> u32 {
        const BLOCK: usize = 16;
        let SampleRow { row, b, draw } = self;
        let greedy = draw.temperature == 0.0;
        let inv_t = 1.0 / draw.temperature;
        let stream = draw.stream_base.wrapping_add(b as u32);
        let base = draw.counter.wrapping_mul(row.len() as u32);
        let mut best = (f32::NEG_INFINITY, u32::MAX);
        let mut scores = [0f32; BLOCK];
        for (c, block) in row.chunks(BLOCK).enumerate() {
            let first = (c * BLOCK) as u32;
            for (i, (s, &logit)) in scores.iter_mut().zip(block).enumerate() {
                *s = if greedy {
                    logit
                } else {
                    let bits = counter_bits(draw.seed, stream, base.wrapping_add(first + i as u32));
                    logit * inv_t + gumbel_of_uniform(uniform_of_bits(bits))
                };
            }
            for (i, &score) in scores[..block.len()].iter().enumerate() {
                let j = first + i as u32;
                if ranks_before((score, j), best) {
                    best = (score, j);
                }
            }
        }
        // No candidate only when every score is NaN (unspecified input): still a valid id.
        if best.1 == u32::MAX { 0 } else { best.1 }
    }
}

// ---- certainty -----------------------------------------------------------------------------------

/// logits [B, v] -> [B]: the negative entropy of softmax(row), sum_j p_j ln p_j (<= 0; 0 for a
/// one-hot row, -ln v for a uniform one). With m = max, e_j = exp(x_j - m), S = sum e_j:
///   ln p_j = x_j - m - ln S,  so  sum_j p_j ln p_j = (sum_j e_j (x_j - m)) / S - ln S.
/// Two passes (the max, then both sums), as the kernel does; exponentials in f32, sums in f64.
pub fn certainty(x: &[f32], v: usize) -> Vec<f32> {
    per_row(x, v, |_, row| simd::dispatch(Certainty(row)))
}

/// One row's certainty, vectorised: `simd::exp` in f32, the sums in eight f64 lanes.
struct Certainty<'a>(&'a [f32]);

impl Kernel for Certainty<'_> {
    type Output = f32;
    #[inline(always)]
    fn run(self) -> f32 {
        let row = self.0;
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let (mut s, mut t) = ([0f64; 8], [0f64; 8]);
        for c in row.chunks(8) {
            for (i, &x) in c.iter().enumerate() {
                let d = x - max;
                let e = simd::exp(d);
                s[i] += e as f64;
                // exp(-inf) * -inf would be NaN; a logit of probability 0 adds nothing.
                t[i] += if e > 0.0 { (e * d) as f64 } else { 0.0 };
            }
        }
        let (s, t): (f64, f64) = (s.iter().sum(), t.iter().sum());
        (t / s - s.ln()) as f32
    }
}
