//! The linear baseline for the dynamics: per layer, ridge least squares from [s_t, x_{t+1}, 1] (the
//! standardised latent, the input vector of the token read next, a bias) to the change
//! s_{t+1} - s_t. The GRU
//! has to beat it to earn its parameters.

use super::fit::LatentPredictor;
use super::standardize::Standardizer;
use super::trace::LatentTrace;
use crate::Device;
use crate::autograd::no_grad;
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::Tensor;

/// One (2D + 1) x D map per layer.
pub struct LinearBaseline {
    layers: usize,
    d: usize,
    /// [layers][(2D + 1) * D], row-major over features.
    weights: Vec<Vec<f64>>,
    /// [vocab * D]: the token input vectors (as `TokenInputs`).
    inputs: Vec<f32>,
}

impl LinearBaseline {
    /// Fits on every one-step pair of `trace`. `inputs` [vocab, D] are the token input vectors;
    /// `ridge` is added to the diagonal (scaled by the row count) so the solve is well posed.
    pub fn fit(
        trace: &LatentTrace,
        standardizer: &Standardizer,
        inputs: Vec<f32>,
        ridge: f64,
    ) -> Result<Self> {
        let (layers, d) = (trace.layers, trace.d_model);
        let f = 2 * d + 1;
        let mut xtx = vec![vec![0f64; f * f]; layers];
        let mut xty = vec![vec![0f64; f * d]; layers];
        let mut rows = 0usize;
        // Features and targets of up to CHUNK pairs per layer, multiplied out by the matmul
        // kernel (X^T X and X^T Y in f32 per chunk, summed in f64 across chunks).
        const CHUNK: usize = 512;
        let mut feats = vec![Vec::with_capacity(CHUNK * f); layers];
        let mut targets = vec![Vec::with_capacity(CHUNK * d); layers];
        let flush = |feats: &mut Vec<Vec<f32>>,
                     targets: &mut Vec<Vec<f32>>,
                     xtx: &mut Vec<Vec<f64>>,
                     xty: &mut Vec<Vec<f64>>|
         -> Result<()> {
            for i in 0..layers {
                let n = feats[i].len() / f;
                if n == 0 {
                    continue;
                }
                let x = Tensor::from_f32(std::mem::take(&mut feats[i]), &[n, f], &Device::Cpu)?;
                let y = Tensor::from_f32(std::mem::take(&mut targets[i]), &[n, d], &Device::Cpu)?;
                let a = ops::matmul(&x, &x, true, false)?.to_vec_f32()?;
                let b = ops::matmul(&x, &y, true, false)?.to_vec_f32()?;
                xtx[i].iter_mut().zip(&a).for_each(|(s, v)| *s += *v as f64);
                xty[i].iter_mut().zip(&b).for_each(|(s, v)| *s += *v as f64);
            }
            Ok(())
        };
        let _off = no_grad();
        for w in 0..trace.windows {
            for t in 0..trace.len - 1 {
                let mut s = trace.at(w, t).to_vec();
                let mut next = trace.at(w, t + 1).to_vec();
                standardizer.apply(&mut s);
                standardizer.apply(&mut next);
                let tok = trace.token(w, t + 1) as usize;
                let x = &inputs[tok * d..][..d];
                for i in 0..layers {
                    let (si, ni) = (&s[i * d..][..d], &next[i * d..][..d]);
                    feats[i].extend_from_slice(si);
                    feats[i].extend_from_slice(x);
                    feats[i].push(1.0);
                    targets[i].extend(ni.iter().zip(si).map(|(n, s)| n - s));
                }
                rows += 1;
                if rows.is_multiple_of(CHUNK) {
                    flush(&mut feats, &mut targets, &mut xtx, &mut xty)?;
                }
            }
        }
        flush(&mut feats, &mut targets, &mut xtx, &mut xty)?;
        let weights = xtx
            .into_iter()
            .zip(xty)
            .map(|(mut a, b)| {
                for p in 0..f {
                    a[p * f + p] += ridge * rows as f64;
                }
                solve_spd(a, b, f, d)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LinearBaseline {
            layers,
            d,
            weights,
            inputs,
        })
    }
}

impl LatentPredictor for LinearBaseline {
    fn step(&self, s: &[f32], tokens: &[u32]) -> Result<Vec<f32>> {
        let (layers, d) = (self.layers, self.d);
        let mut out = s.to_vec();
        for (row, &tok) in tokens.iter().enumerate() {
            let x = &self.inputs[tok as usize * d..][..d];
            for i in 0..layers {
                let si = &s[(row * layers + i) * d..][..d];
                let w = &self.weights[i];
                let o = &mut out[(row * layers + i) * d..][..d];
                let mut delta = w[2 * d * d..][..d].to_vec(); // bias row
                for (p, &v) in si.iter().chain(x).enumerate() {
                    let wr = &w[p * d..][..d];
                    for j in 0..d {
                        delta[j] += v as f64 * wr[j];
                    }
                }
                o.iter_mut()
                    .zip(&delta)
                    .for_each(|(o, dl)| *o += *dl as f32);
            }
        }
        Ok(out)
    }
}

/// Solves A W = B for symmetric positive definite A [f, f] and B [f, m] by Cholesky.
fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>, f: usize, m: usize) -> Result<Vec<f64>> {
    for j in 0..f {
        let mut diag = a[j * f + j];
        for k in 0..j {
            diag -= a[j * f + k] * a[j * f + k];
        }
        if diag <= 0.0 || !diag.is_finite() {
            return Err(Error::InvalidArgument {
                op: "LinearBaseline::fit",
                detail: format!(
                    "the normal equations are not positive definite (pivot {j}); raise the ridge"
                ),
            });
        }
        let l = diag.sqrt();
        a[j * f + j] = l;
        for i in j + 1..f {
            let mut v = a[i * f + j];
            for k in 0..j {
                v -= a[i * f + k] * a[j * f + k];
            }
            a[i * f + j] = v / l;
        }
    }
    // L Y = B, then L^T W = Y, column block by column block.
    for i in 0..f {
        for k in 0..i {
            let l = a[i * f + k];
            for c in 0..m {
                b[i * m + c] -= l * b[k * m + c];
            }
        }
        let l = a[i * f + i];
        b[i * m..][..m].iter_mut().for_each(|v| *v /= l);
    }
    for i in (0..f).rev() {
        for k in i + 1..f {
            let l = a[k * f + i];
            for c in 0..m {
                b[i * m + c] -= l * b[k * m + c];
            }
        }
        let l = a[i * f + i];
        b[i * m..][..m].iter_mut().for_each(|v| *v /= l);
    }
    Ok(b)
}
