//! How well a predictor of the next latent fits held-out traces, open loop: from the real latents
//! at t (after reading token t) and the real tokens t+1..=t+k, it predicts the latents at t+k
//! from its own predictions. A step reads the token it moves to, as a planner's action does.
//!
//! Per k: the R^2 of the predicted change `s_{t+k} - s_t` against the real change, 1 - SSE / SS
//! with SS the real change's sum of squares about zero (the fraction of the change explained,
//! pooled over every channel of every layer, in standard units): the identity predicts no change
//! and scores exactly 0, so any positive value is what a predictor adds over standing still; and the mean cosine between predicted and real latents per layer in the
//! residual stream's own units (what a head reading them would see; high for the identity too).

use super::standardize::Standardizer;
use super::trace::LatentTrace;
use crate::error::{Result, shape_err};

/// Something that steps a batch of standardised latents [B, layers * D] by reading one more token
/// each (the latent after token t and token t+1 give the latent after token t+1).
pub trait LatentPredictor {
    fn step(&self, s: &[f32], tokens: &[u32]) -> Result<Vec<f32>>;
}

/// A policy read from raw latents [B, layers * D]: log-probabilities [B, V].
pub trait PolicyHead {
    fn log_probs(&self, raw: &[f32], rows: usize) -> Result<Vec<f32>>;
}

/// The identity baseline: nothing changes.
pub struct Identity;

impl LatentPredictor for Identity {
    fn step(&self, s: &[f32], _tokens: &[u32]) -> Result<Vec<f32>> {
        Ok(s.to_vec())
    }
}

/// The fit at one horizon.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OpenLoopFit {
    pub k: usize,
    pub r2_change: f64,
    pub cosine: f64,
    pub samples: usize,
    /// With a policy head: how often the head's top token at the predicted latents is its top
    /// token at the real ones, and KL(real || predicted) of the two distributions in nats.
    pub policy_top1: Option<f64>,
    pub policy_kl: Option<f64>,
}

/// The fit at every horizon asked for.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FitReport {
    pub fits: Vec<OpenLoopFit>,
}

impl FitReport {
    pub fn at(&self, k: usize) -> Option<&OpenLoopFit> {
        self.fits.iter().find(|f| f.k == k)
    }
}

/// Running sums for one horizon.
struct Sums {
    sse: f64,
    /// The real change's sum of squares.
    ss: f64,
    cosine: f64,
    cosines: usize,
    samples: usize,
    top1: usize,
    kl: f64,
}

/// Evaluates `predictor` on `trace` (raw latents) from starts every `stride` positions of every
/// window, at the horizons `ks` (ascending). Windows are stepped together, one batch per start.
/// With `policy`, also how well the policy at predicted latents matches the policy at real ones.
pub fn evaluate(
    predictor: &dyn LatentPredictor,
    trace: &LatentTrace,
    standardizer: &Standardizer,
    ks: &[usize],
    stride: usize,
    policy: Option<&dyn PolicyHead>,
) -> Result<FitReport> {
    let k_max = ks.iter().copied().max().unwrap_or(0);
    if k_max == 0 || stride == 0 || trace.len <= k_max {
        return shape_err(
            "latent::fit::evaluate",
            format!(
                "horizons {ks:?} and stride {stride} need windows longer than the largest horizon (len {})",
                trace.len
            ),
        );
    }
    let (layers, d) = (trace.layers, trace.d_model);
    let n = layers * d;
    let mut sums: Vec<Sums> = ks
        .iter()
        .map(|_| Sums {
            sse: 0.0,
            ss: 0.0,
            cosine: 0.0,
            cosines: 0,
            samples: 0,
            top1: 0,
            kl: 0.0,
        })
        .collect();
    let standard = |raw: &[f32]| {
        let mut s = raw.to_vec();
        standardizer.apply(&mut s);
        s
    };
    for t0 in (0..trace.len - k_max).step_by(stride) {
        let w = trace.windows;
        let start: Vec<f32> = (0..w).flat_map(|win| standard(trace.at(win, t0))).collect();
        let mut s = start.clone();
        for step in 1..=k_max {
            let tokens: Vec<u32> = (0..w).map(|win| trace.token(win, t0 + step)).collect();
            s = predictor.step(&s, &tokens)?;
            let Some(h) = ks.iter().position(|&k| k == step) else {
                continue;
            };
            let acc = &mut sums[h];
            let mut raw_pred = s.clone();
            standardizer.invert(&mut raw_pred);
            for win in 0..w {
                let real_raw = trace.at(win, t0 + step);
                let real = standard(real_raw);
                let (p, s0) = (&s[win * n..][..n], &start[win * n..][..n]);
                for j in 0..n {
                    let change = (real[j] - s0[j]) as f64;
                    let e = (p[j] - real[j]) as f64;
                    acc.sse += e * e;
                    acc.ss += change * change;
                }
                let pr = &raw_pred[win * n..][..n];
                for (a, b) in pr.chunks_exact(d).zip(real_raw.chunks_exact(d)) {
                    acc.cosine += cosine(a, b);
                    acc.cosines += 1;
                }
                acc.samples += 1;
            }
            if let Some(head) = policy {
                let real: Vec<f32> = (0..w)
                    .flat_map(|win| trace.at(win, t0 + step).to_vec())
                    .collect();
                let (lp, lq) = (head.log_probs(&real, w)?, head.log_probs(&raw_pred, w)?);
                let v = lp.len() / w;
                for (p, q) in lp.chunks_exact(v).zip(lq.chunks_exact(v)) {
                    acc.top1 += usize::from(argmax(p) == argmax(q));
                    acc.kl += p
                        .iter()
                        .zip(q)
                        .map(|(a, b)| (*a as f64).exp() * (*a as f64 - *b as f64))
                        .sum::<f64>();
                }
            }
        }
    }
    let fits = ks
        .iter()
        .zip(&sums)
        .map(|(&k, acc)| OpenLoopFit {
            k,
            r2_change: 1.0 - acc.sse / acc.ss.max(f64::MIN_POSITIVE),
            cosine: acc.cosine / acc.cosines.max(1) as f64,
            samples: acc.samples,
            policy_top1: policy.map(|_| acc.top1 as f64 / acc.samples.max(1) as f64),
            policy_kl: policy.map(|_| acc.kl / acc.samples.max(1) as f64),
        })
        .collect();
    Ok(FitReport { fits })
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(1e-30)
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv { (i, x) } else { (bi, bv) }
        })
        .0
}
