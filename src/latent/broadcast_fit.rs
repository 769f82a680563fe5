//! The delta broadcaster's held-out report: how well its proposed state deltas match the real
//! ones, and whether writing its target state moves the backbone where the target latent says.
//!
//! For each held-out pair (window, t, other token x'), the windows are replayed to the state
//! after x_{..t}, then the real next tokens x_{t+1}, ... are read from four states:
//!
//! - `target`: the counterfactual state after x' (SSM and conv states): where the plan wants to be;
//! - `none`: the real state after x_t (no injection);
//! - `broadcast`: the real state with every layer's SSM state replaced by the broadcaster's
//!   proposal from (h, z, z');
//! - `exact`: the real state with every layer's SSM state replaced by the true h' (the best any
//!   SSM-state injection can do: the conv state still holds x_t).
//!
//! Reported one step later (what the next prediction sees) and `REPLAY_STEPS` steps later (past
//! the conv window, so what the SSM state carries): the mean squared distance of the latents to
//! the target's (standard units, all layers) and the KL divergence of the target's next-token
//! distribution from each.

use serde::Serialize;

use super::Standardizer;
use super::broadcaster::Broadcaster;
use super::state_pairs::{REPLAY_STEPS, StatePairs};
use super::trace::LatentTrace;
use crate::autograd::no_grad;
use crate::error::{Result, shape_err};
use crate::model::Backbone;
use crate::state::State;
use crate::tensor::Tensor;

/// A measure under each injection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Injections {
    pub none: f64,
    pub broadcast: f64,
    pub exact: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BroadcastFit {
    pub pairs: usize,
    /// R^2 of the proposed deltas against the real h' - h, per layer and pooled; uncentred, so
    /// proposing no change (not injecting) scores 0.
    pub delta_r2: Vec<f64>,
    pub delta_r2_all: f64,
    /// One step after injecting, then `REPLAY_STEPS` steps after.
    pub after: Vec<AfterSteps>,
}

/// The distances to the target `steps` real tokens after the injection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AfterSteps {
    pub steps: usize,
    /// Mean squared distance of the latents to the target's, standard units.
    pub latent_mse: Injections,
    /// KL(target's next-token distribution || this one's), nats.
    pub token_kl: Injections,
}

/// The horizons reported.
const AFTER: [usize; 2] = [1, REPLAY_STEPS];

/// R^2 of `broadcaster`'s proposals on `pairs` (per layer, then pooled).
pub fn delta_r2(
    broadcaster: &Broadcaster,
    standardizer: &Standardizer,
    pairs: &StatePairs,
) -> Result<(Vec<f64>, f64)> {
    let device = broadcaster.layers[0].input.device();
    let dz = standardizer.change(&pairs.z, &pairs.z_alt);
    let proposed = broadcaster.propose(&pairs.h, &dz, &device)?;
    let (layers, per) = (pairs.layers, pairs.d_inner * pairs.d_state);
    let mut sse = vec![0f64; layers];
    let mut sst = vec![0f64; layers];
    for (k, ((h, alt), p)) in pairs.h.iter().zip(&pairs.h_alt).zip(&proposed).enumerate() {
        let i = k / per % layers;
        let real = (*alt - *h) as f64;
        sse[i] += ((*p - *alt) as f64).powi(2);
        sst[i] += real * real;
    }
    let r2 = |e: f64, t: f64| if t > 0.0 { 1.0 - e / t } else { 0.0 };
    let per_layer = sse.iter().zip(&sst).map(|(e, t)| r2(*e, *t)).collect();
    Ok((per_layer, r2(sse.iter().sum(), sst.iter().sum())))
}

/// The full report on held-out `pairs` of the windows of `trace`, `batch` windows per replay.
pub fn broadcast_fit(
    model: &Backbone,
    broadcaster: &Broadcaster,
    standardizer: &Standardizer,
    trace: &LatentTrace,
    pairs: &StatePairs,
    batch: usize,
) -> Result<BroadcastFit> {
    if pairs.count == 0 || batch == 0 {
        return shape_err(
            "broadcast_fit",
            format!("{} pairs, batch {batch}", pairs.count),
        );
    }
    let _off = no_grad();
    let (delta_r2, delta_r2_all) = delta_r2(broadcaster, standardizer, pairs)?;
    let mut positions: Vec<u32> = pairs.position.clone();
    positions.sort_unstable();
    positions.dedup();
    let mut sums = AFTER.map(|steps| AfterSteps {
        steps,
        ..Default::default()
    });
    for t in positions {
        let of_t: Vec<usize> = (0..pairs.count)
            .filter(|&i| pairs.position[i] == t)
            .collect();
        for chunk in of_t.chunks(batch) {
            let windows: Vec<usize> = chunk.iter().map(|&i| pairs.window[i] as usize).collect();
            let alt: Vec<u32> = chunk.iter().map(|&i| pairs.alt_token[i]).collect();
            let parts = replay(
                model,
                broadcaster,
                standardizer,
                trace,
                &windows,
                t as usize,
                alt,
            )?;
            for (sum, part) in sums.iter_mut().zip(parts) {
                sum.latent_mse.add(part.latent_mse);
                sum.token_kl.add(part.token_kl);
            }
        }
    }
    let n = pairs.count as f64;
    Ok(BroadcastFit {
        pairs: pairs.count,
        delta_r2,
        delta_r2_all,
        after: sums
            .iter()
            .map(|s| AfterSteps {
                steps: s.steps,
                latent_mse: s.latent_mse.scaled(1.0 / n),
                token_kl: s.token_kl.scaled(1.0 / n),
            })
            .collect(),
    })
}

impl Injections {
    fn add(&mut self, o: Injections) {
        self.none += o.none;
        self.broadcast += o.broadcast;
        self.exact += o.exact;
    }

    fn scaled(self, k: f64) -> Injections {
        Injections {
            none: self.none * k,
            broadcast: self.broadcast * k,
            exact: self.exact * k,
        }
    }
}

/// One replay of `windows` at position t: per horizon of `AFTER`, the sums over its rows of the
/// latent squared distance and the next-token KL under each injection.
fn replay(
    model: &Backbone,
    broadcaster: &Broadcaster,
    standardizer: &Standardizer,
    trace: &LatentTrace,
    windows: &[usize],
    t: usize,
    alt: Vec<u32>,
) -> Result<[AfterSteps; 2]> {
    let device = model.device();
    let b = windows.len();
    let column = |u: usize| -> Result<Tensor> {
        let v = windows.iter().map(|&w| trace.token(w, u)).collect();
        Tensor::from_u32(v, &[b], &device)
    };
    let prefix: Vec<u32> = windows
        .iter()
        .flat_map(|&w| (0..t).map(move |u| trace.token(w, u)))
        .collect();
    let mut real = model.new_state(b)?;
    model.prefill_last(&Tensor::from_u32(prefix, &[b, t], &device)?, &mut real)?;
    let mut cf = real.snapshot()?;
    let (_, z) = model.step_latents(&column(t)?, &mut real)?;
    let (_, z_alt) = model.step_latents(&Tensor::from_u32(alt, &[b], &device)?, &mut cf)?;
    let (z, z_alt) = (interleave(&z, b)?, interleave(&z_alt, b)?);
    let ssm = |s: &State| {
        interleave(
            &s.layers.iter().map(|l| l.ssm.clone()).collect::<Vec<_>>(),
            b,
        )
    };
    let proposed = broadcaster.propose(&ssm(&real)?, &standardizer.change(&z, &z_alt), &device)?;
    let with_ssm = |values: &[f32]| -> Result<State> {
        let mut s = real.snapshot()?;
        let layers = s.layers.len();
        let per = values.len() / b / layers;
        for (i, l) in s.layers.iter_mut().enumerate() {
            let v: Vec<f32> = (0..b)
                .flat_map(|r| values[(r * layers + i) * per..][..per].iter().copied())
                .collect();
            l.ssm = Tensor::from_f32(v, l.ssm.shape(), &device)?;
        }
        Ok(s)
    };
    // target, none, broadcast, exact
    let mut states = [
        cf.snapshot()?,
        real.snapshot()?,
        with_ssm(&proposed)?,
        with_ssm(&ssm(&cf)?)?,
    ];
    let mut out = AFTER.map(|steps| AfterSteps {
        steps,
        ..Default::default()
    });
    for j in 1..=REPLAY_STEPS {
        let next = column(t + j)?;
        let mut logits = Vec::with_capacity(4);
        let mut latents = Vec::with_capacity(4);
        for s in states.iter_mut() {
            let (l, z) = model.step_latents(&next, s)?;
            logits.push(l.to_vec_f32()?);
            let mut z = interleave(&z, b)?;
            standardizer.apply(&mut z);
            latents.push(z);
        }
        let Some(slot) = out.iter_mut().find(|a| a.steps == j) else {
            continue;
        };
        let dist = |z: &[f32]| -> f64 {
            let per_row = z.len() / b;
            z.iter()
                .zip(&latents[0])
                .map(|(a, c)| ((a - c) as f64).powi(2))
                .sum::<f64>()
                / per_row as f64
        };
        let kl = |l: &[f32]| -> f64 {
            let v = l.len() / b;
            (0..b)
                .map(|r| kl_divergence(&logits[0][r * v..][..v], &l[r * v..][..v]))
                .sum()
        };
        slot.latent_mse = Injections {
            none: dist(&latents[1]),
            broadcast: dist(&latents[2]),
            exact: dist(&latents[3]),
        };
        slot.token_kl = Injections {
            none: kl(&logits[1]),
            broadcast: kl(&logits[2]),
            exact: kl(&logits[3]),
        };
    }
    Ok(out)
}

/// Per-layer tensors [B, ...] as host rows [B, layers, ...].
fn interleave(per_layer: &[Tensor], b: usize) -> Result<Vec<f32>> {
    let host = per_layer
        .iter()
        .map(|t| t.to_vec_f32())
        .collect::<Result<Vec<_>>>()?;
    let per = host[0].len() / b;
    Ok((0..b)
        .flat_map(|r| {
            host.iter()
                .flat_map(move |l| l[r * per..][..per].iter().copied())
        })
        .collect())
}

/// KL(p || q) in nats for logits of p and q.
fn kl_divergence(p_logits: &[f32], q_logits: &[f32]) -> f64 {
    let log_softmax = |l: &[f32]| -> Vec<f64> {
        let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = l.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln() + m;
        l.iter().map(|&x| x as f64 - lse).collect()
    };
    let (lp, lq) = (log_softmax(p_logits), log_softmax(q_logits));
    lp.iter().zip(&lq).map(|(a, b)| a.exp() * (a - b)).sum()
}
