//! The delta broadcaster: per layer, from the current SSM state h [E, N], the current latent z and
//! a target latent z* to a target state h* = h + delta, the state injection writes so that the
//! backbone's next steps run as if it were at z*. Trained on counterfactual pairs
//! (`state_pairs`): delta = h' - h where h' is the state after another token.
//!
//! ```text
//! dz    = (z* - z) / std_z                      standard units (the dynamics' Standardizer)
//! a     = P dz                                  [r]        P: [r, D]
//! q     = M_add a, reshaped [N, c]              [N, c]     M_add: [N c, r]
//! s     = M_scale a, reshaped [N, c]
//! delta = (q U_add^T + (h / sigma_h) o (s U_scale^T)) * sigma_delta     [N, E], U: [E, c]
//! ```
//!
//! Factorised over the input (rank r), the state dimension N and the channels E (rank c): a full
//! E N x D map per layer is 19M parameters at mamba-130m's shape, this one
//! r D + 2 N c r + 2 E c (57K at r = 32, c = 8; 1.1% of the backbone for all 24 layers). Two
//! terms because a token changes the state two ways: it adds its own input (dt B x, free of h:
//! the additive term) and it changes how much of the old state decays (exp(dt A) h: a term
//! proportional to h, the scale term). The states are handled channels last ([N, E], the
//! transpose of `LayerState::ssm`) so each map is one plain matmul; `propose` transposes.
//! The output maps start at zero: an untrained broadcaster proposes no change.

use super::Standardizer;
use super::state_pairs::StatePairs;
use crate::Device;
use crate::autograd::no_grad;
use crate::error::{Result, shape_err};
use crate::ops;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// The sizes of a broadcaster.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BroadcasterConfig {
    pub layers: usize,
    pub d_model: usize,
    /// E and N of the SSM state.
    pub d_inner: usize,
    pub d_state: usize,
    /// r: the rank of the latent change it reads.
    pub rank: usize,
    /// c: the rank over the channels E.
    pub channel_rank: usize,
}

/// One layer's maps (names as saved under `crsm.broadcaster.<layer>.`).
#[derive(Clone)]
pub struct BroadcastLayer {
    /// [r, D]
    pub input: Tensor,
    /// [N c, r] each
    pub mix_add: Tensor,
    pub mix_scale: Tensor,
    /// [E, c] each
    pub out_add: Tensor,
    pub out_scale: Tensor,
}

#[derive(Clone)]
pub struct Broadcaster {
    pub config: BroadcasterConfig,
    pub layers: Vec<BroadcastLayer>,
    /// Per layer, fixed from the training pairs: the rms of h and of the deltas, so every layer
    /// learns in unit scale (saved beside the weights).
    pub h_scale: Vec<f32>,
    pub delta_scale: Vec<f32>,
}

impl Broadcaster {
    /// A fresh broadcaster proposing no change (zero output maps), with unit scales.
    pub fn init(config: BroadcasterConfig, seed: u64, device: &Device) -> Result<Self> {
        let BroadcasterConfig {
            layers,
            d_model: d,
            d_inner: e,
            d_state: n,
            rank: r,
            channel_rank: c,
        } = config;
        if [layers, d, e, n, r, c].contains(&0) {
            return shape_err(
                "Broadcaster::init",
                format!("every size must be >= 1: {config:?}"),
            );
        }
        let mut rng = Rng::new(seed);
        let var = |data: Vec<f32>, shape: &[usize]| -> Result<Tensor> {
            Ok(Tensor::from_f32(data, shape, device)?.as_variable())
        };
        let layers = (0..layers)
            .map(|_| {
                Ok(BroadcastLayer {
                    input: var(rng.normal_vec(r * d, 1.0 / (d as f32).sqrt()), &[r, d])?,
                    mix_add: var(
                        rng.normal_vec(n * c * r, 1.0 / (r as f32).sqrt()),
                        &[n * c, r],
                    )?,
                    mix_scale: var(
                        rng.normal_vec(n * c * r, 1.0 / (r as f32).sqrt()),
                        &[n * c, r],
                    )?,
                    out_add: var(vec![0.0; e * c], &[e, c])?,
                    out_scale: var(vec![0.0; e * c], &[e, c])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Broadcaster {
            config,
            layers,
            h_scale: vec![1.0; config.layers],
            delta_scale: vec![1.0; config.layers],
        })
    }

    pub fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                [
                    ("input", &l.input),
                    ("mix_add", &l.mix_add),
                    ("mix_scale", &l.mix_scale),
                    ("out_add", &l.out_add),
                    ("out_scale", &l.out_scale),
                ]
                .map(|(n, t)| (format!("{i}.{n}"), t))
            })
            .collect()
    }

    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        self.layers
            .iter_mut()
            .flat_map(|l| {
                [
                    &mut l.input,
                    &mut l.mix_add,
                    &mut l.mix_scale,
                    &mut l.out_add,
                    &mut l.out_scale,
                ]
            })
            .collect()
    }

    pub fn parameter_count(&self) -> usize {
        self.named_parameters()
            .iter()
            .map(|(_, p)| p.elem_count())
            .sum()
    }

    /// Layer `i`'s proposed delta in scaled units: dz [B, D] (standard units), h [B N, E] (channels
    /// last, divided by `h_scale[i]`) -> [B N, E] (in units of `delta_scale[i]`).
    pub fn layer_delta(&self, i: usize, dz: &Tensor, h: &Tensor) -> Result<Tensor> {
        let BroadcasterConfig {
            d_model: d,
            d_inner: e,
            d_state: n,
            channel_rank: c,
            ..
        } = self.config;
        let b = dz.dim(0);
        if i >= self.layers.len() || dz.shape() != [b, d] || h.shape() != [b * n, e] {
            return shape_err(
                "Broadcaster::layer_delta",
                format!(
                    "layer {i} of {}: dz {:?} must be [B, {d}] and h {:?} [B*{n}, {e}]",
                    self.layers.len(),
                    dz.shape(),
                    h.shape()
                ),
            );
        }
        let l = &self.layers[i];
        let a = ops::linear(dz, &l.input, None)?;
        let q = ops::linear(&a, &l.mix_add, None)?.reshape(&[b * n, c])?;
        let s = ops::linear(&a, &l.mix_scale, None)?.reshape(&[b * n, c])?;
        let add = ops::linear(&q, &l.out_add, None)?;
        let scale = ops::linear(&s, &l.out_scale, None)?;
        ops::add(&add, &ops::mul(h, &scale)?)
    }

    /// Target states for a batch, on the host, without gradients: h [B, layers, E, N] (as
    /// `LayerState::ssm` holds them) and dz [B, layers, D] in standard units -> h* of h's shape.
    pub fn propose(&self, h: &[f32], dz: &[f32], device: &Device) -> Result<Vec<f32>> {
        let _off = no_grad();
        let BroadcasterConfig {
            layers,
            d_model: d,
            d_inner: e,
            d_state: n,
            ..
        } = self.config;
        let per = layers * e * n;
        if per == 0 || !h.len().is_multiple_of(per) || dz.len() != h.len() / per * layers * d {
            return shape_err(
                "Broadcaster::propose",
                format!(
                    "h of {} values and dz of {} for {layers} layers",
                    h.len(),
                    dz.len()
                ),
            );
        }
        let b = h.len() / per;
        let mut out = h.to_vec();
        for i in 0..layers {
            let (hi, dzi) = self.layer_inputs(i, h, dz, b);
            let delta = self
                .layer_delta(
                    i,
                    &Tensor::from_f32(dzi, &[b, d], device)?,
                    &Tensor::from_f32(hi, &[b * n, e], device)?,
                )?
                .to_vec_f32()?;
            for r in 0..b {
                let target = &mut out[(r * layers + i) * e * n..][..e * n];
                let src = &delta[r * n * e..][..n * e];
                for (k, v) in target.iter_mut().enumerate() {
                    // target is [E, N] row-major; src is [N, E].
                    let (ch, s) = (k / n, k % n);
                    *v += src[s * e + ch] * self.delta_scale[i];
                }
            }
        }
        Ok(out)
    }

    /// Layer i's inputs of a host batch: h channels last and divided by `h_scale[i]`, and dz.
    pub fn layer_inputs(&self, i: usize, h: &[f32], dz: &[f32], b: usize) -> (Vec<f32>, Vec<f32>) {
        let BroadcasterConfig {
            layers,
            d_model: d,
            d_inner: e,
            d_state: n,
            ..
        } = self.config;
        let inv = 1.0 / self.h_scale[i];
        let mut hi = Vec::with_capacity(b * e * n);
        let mut dzi = Vec::with_capacity(b * d);
        for r in 0..b {
            hi.extend(
                channels_last(&h[(r * layers + i) * e * n..][..e * n], e, n).map(|v| v * inv),
            );
            dzi.extend_from_slice(&dz[(r * layers + i) * d..][..d]);
        }
        (hi, dzi)
    }
}

impl Broadcaster {
    /// Sets `h_scale` and `delta_scale` per layer to the rms of the pairs' h and of h' - h.
    pub fn fit_scales(&mut self, pairs: &StatePairs) {
        let (layers, en) = (
            self.config.layers,
            self.config.d_inner * self.config.d_state,
        );
        let mut sums = vec![(0f64, 0f64); layers];
        for (k, (h, alt)) in pairs.h.iter().zip(&pairs.h_alt).enumerate() {
            let s = &mut sums[k / en % layers];
            s.0 += (*h as f64).powi(2);
            s.1 += (*alt as f64 - *h as f64).powi(2);
        }
        let rows = (pairs.count * en).max(1) as f64;
        let rms = |v: f64| ((v / rows).sqrt() as f32).max(1e-12);
        self.h_scale = sums.iter().map(|s| rms(s.0)).collect();
        self.delta_scale = sums.iter().map(|s| rms(s.1)).collect();
    }

    /// Mean squared error of the proposed deltas on `pairs` in `delta_scale` units, averaged over
    /// layers (each layer counts alike whatever its scale).
    pub fn pair_loss(
        &self,
        pairs: &StatePairs,
        standardizer: &Standardizer,
        device: &Device,
    ) -> Result<Tensor> {
        let BroadcasterConfig {
            layers,
            d_model: d,
            d_inner: e,
            d_state: n,
            ..
        } = self.config;
        let b = pairs.count;
        if b == 0 || pairs.layers != layers || pairs.d_model != d || pairs.d_inner != e {
            return shape_err(
                "Broadcaster::pair_loss",
                format!(
                    "{b} pairs of {} layers x {} (E {})",
                    pairs.layers, pairs.d_model, pairs.d_inner
                ),
            );
        }
        let dz = standardizer.change(&pairs.z, &pairs.z_alt);
        let mut total: Option<Tensor> = None;
        for i in 0..layers {
            let (hi, dzi) = self.layer_inputs(i, &pairs.h, &dz, b);
            let inv = 1.0 / self.delta_scale[i];
            let mut target = Vec::with_capacity(b * e * n);
            for r in 0..b {
                let at = (r * layers + i) * e * n;
                let (h, alt) = (&pairs.h[at..][..e * n], &pairs.h_alt[at..][..e * n]);
                target.extend(
                    channels_last(h, e, n)
                        .zip(channels_last(alt, e, n))
                        .map(|(a, b)| (b - a) * inv),
                );
            }
            let pred = self.layer_delta(
                i,
                &Tensor::from_f32(dzi, &[b, d], device)?,
                &Tensor::from_f32(hi, &[b * n, e], device)?,
            )?;
            let err = ops::sub(&pred, &Tensor::from_f32(target, &[b * n, e], device)?)?;
            let mse = ops::mean(&ops::mul(&err, &err)?)?;
            total = Some(match total {
                None => mse,
                Some(t) => ops::add(&t, &mse)?,
            });
        }
        ops::scale(&total.expect("layers >= 1"), 1.0 / layers as f32)
    }
}

/// An [E, N] state read channels last ([N, E] row-major order).
pub fn channels_last(h: &[f32], e: usize, n: usize) -> impl Iterator<Item = f32> + '_ {
    (0..n).flat_map(move |s| (0..e).map(move |ch| h[ch * n + s]))
}
