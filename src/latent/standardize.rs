//! Per-layer, per-channel standardisation of latents. The residual stream's scale grows with depth
//! (each block adds to it), so raw latents would let the deep layers dominate every loss; in
//! standard units each channel of each layer counts alike, and R^2 is scale-free anyway.

use crate::error::{Result, shape_err};

/// Mean and standard deviation per (layer, channel), from a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub layers: usize,
    pub d_model: usize,
    /// [layers * d_model]
    pub mean: Vec<f32>,
    /// [layers * d_model], floored at `MIN_STD` so a dead channel does not divide by zero.
    pub std: Vec<f32>,
}

const MIN_STD: f32 = 1e-6;

impl Standardizer {
    /// From latents `z` laid out [rows, layers * d_model].
    pub fn fit(z: &[f32], layers: usize, d_model: usize) -> Result<Self> {
        let n = layers * d_model;
        if n == 0 || z.is_empty() || !z.len().is_multiple_of(n) {
            return shape_err(
                "Standardizer::fit",
                format!("{} values are not rows of {layers} x {d_model}", z.len()),
            );
        }
        let rows = (z.len() / n) as f64;
        let mut sum = vec![0f64; n];
        let mut sq = vec![0f64; n];
        for row in z.chunks_exact(n) {
            for (j, &v) in row.iter().enumerate() {
                sum[j] += v as f64;
                sq[j] += (v as f64) * (v as f64);
            }
        }
        let mean: Vec<f32> = sum.iter().map(|s| (s / rows) as f32).collect();
        let std = sum
            .iter()
            .zip(&sq)
            .map(|(s, q)| {
                let m = s / rows;
                ((q / rows - m * m).max(0.0).sqrt() as f32).max(MIN_STD)
            })
            .collect();
        Ok(Standardizer {
            layers,
            d_model,
            mean,
            std,
        })
    }

    /// (z - mean) / std, row by row, in place.
    pub fn apply(&self, z: &mut [f32]) {
        for row in z.chunks_exact_mut(self.mean.len()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }

    /// s * std + mean, row by row, in place: back to the residual stream's units.
    pub fn invert(&self, s: &mut [f32]) {
        for row in s.chunks_exact_mut(self.mean.len()) {
            for ((v, m), sd) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * sd + m;
            }
        }
    }

    /// (to - from) / std, row by row: a change of latent in standard units (the mean cancels).
    pub fn change(&self, from: &[f32], to: &[f32]) -> Vec<f32> {
        let n = self.std.len();
        from.iter()
            .zip(to)
            .enumerate()
            .map(|(k, (a, b))| (b - a) / self.std[k % n])
            .collect()
    }
}
