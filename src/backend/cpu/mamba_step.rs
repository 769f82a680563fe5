//! One decode step of a Mamba block for B independent sequences, fused: what `MambaBlock`
//! computes from its ops for L = 1 (HF's `causal_conv1d_update` + `selective_state_update`), in one
//! call that updates the conv and SSM states in place. The op-by-op path records ~22 kernels per
//! layer, each allocating its output and paying a parallel dispatch; at small widths (the nano
//! model, the planner's leaves) that overhead, not arithmetic or bandwidth, set the step's time.
//!
//! Shapes: x [B, D]; conv state [B, K-1, E] (the last K-1 pre-conv inputs, oldest first); SSM state
//! [B, E, N]; weights as `MambaBlock` (HF names), the matmul weights f32 or bf16.
//!
//! ```text
//! h          = rms_norm(x) * norm
//! [xb, z]    = in_proj(h)
//! u          = silu(bias + sum_{j<K-1} w[:, j] conv[j] + w[:, K-1] xb);  conv <- [conv[1..], xb]
//! [dt, B, C] = x_proj(u);  dt = softplus(dt_proj(dt) + dt_bias)
//! h_ssm      = exp(dt A) h_ssm + dt B u     (A = -exp(A_log))
//! y          = (C . h_ssm + D u) * silu(z)
//! out        = x + out_proj(y)
//! ```

use super::matmul::matmul;
use super::matmul_bf16::matmul_bf16_weights;
use super::rmsnorm::rms_norm;
use super::simd::{self, Kernel};
use super::unary::{silu_scalar, softplus_scalar};
use crate::backend::params::MambaStepDims;
use crate::error::Result;

/// A matmul weight [N, K] (PyTorch's Linear layout), as f32 or as bf16 bits.
#[derive(Clone, Copy)]
pub enum Weight<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
}

impl Weight<'_> {
    /// x [m, k] W^T -> [m, n], plus the bias when there is one.
    fn linear(
        self,
        x: &[f32],
        m: usize,
        k: usize,
        n: usize,
        bias: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        let mut y = match self {
            Weight::F32(w) => matmul(x, w, m, k, n, false, true)?,
            Weight::Bf16(w) => matmul_bf16_weights(x, w, m, k, n)?,
        };
        if let Some(bias) = bias {
            for row in y.chunks_exact_mut(n) {
                row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
            }
        }
        Ok(y)
    }
}

/// The weights of one block.
pub struct StepWeights<'a> {
    pub norm: &'a [f32],
    pub in_proj: Weight<'a>,
    pub in_proj_bias: Option<&'a [f32]>,
    /// [E, K]
    pub conv_weight: &'a [f32],
    pub conv_bias: Option<&'a [f32]>,
    pub x_proj: Weight<'a>,
    pub dt_proj: Weight<'a>,
    pub dt_bias: &'a [f32],
    /// [E, N]
    pub a_log: &'a [f32],
    pub d: &'a [f32],
    pub out_proj: Weight<'a>,
    pub out_proj_bias: Option<&'a [f32]>,
}

/// The block's output [B, D] (the residual stream after it); `conv` and `ssm` are advanced by one
/// token in place.
pub fn mamba_step(
    w: &StepWeights,
    dims: MambaStepDims,
    x: &[f32],
    conv: &mut [f32],
    ssm: &mut [f32],
) -> Result<Vec<f32>> {
    let MambaStepDims {
        batch: b,
        d_model: dm,
        d_inner: e,
        d_state: n,
        dt_rank: r,
        conv_kernel: k,
        norm_eps,
    } = dims;
    let h = rms_norm(x, w.norm, dm, norm_eps);
    let xz = w.in_proj.linear(&h, b, dm, 2 * e, w.in_proj_bias)?;
    let u = conv_step(w, dims, &xz, conv);
    let dbc = w.x_proj.linear(&u, b, e, r + 2 * n, None)?;
    let dt_low: Vec<f32> = dbc
        .chunks_exact(r + 2 * n)
        .flat_map(|row| &row[..r])
        .copied()
        .collect();
    let mut dt = w.dt_proj.linear(&dt_low, b, r, e, Some(w.dt_bias))?;
    dt.iter_mut().for_each(|v| *v = softplus_scalar(*v));
    let y = simd::dispatch(SsmStep {
        w,
        dims,
        xz: &xz,
        u: &u,
        dbc: &dbc,
        dt: &dt,
        ssm,
    });
    let mut out = w.out_proj.linear(&y, b, e, dm, w.out_proj_bias)?;
    out.iter_mut().zip(x).for_each(|(o, x)| *o += x);
    debug_assert_eq!(k, w.conv_weight.len() / e);
    Ok(out)
}

/// The conv output u = silu(conv(window)) [B, E] for the newest input xb (the first half of each
/// row of xz), and the conv state shifted by one with xb appended.
fn conv_step(w: &StepWeights, dims: MambaStepDims, xz: &[f32], conv: &mut [f32]) -> Vec<f32> {
    let MambaStepDims {
        batch: b,
        d_inner: e,
        conv_kernel: k,
        ..
    } = dims;
    let mut u = vec![0f32; b * e];
    for row in 0..b {
        let xb = &xz[row * 2 * e..][..e];
        let state = &mut conv[row * (k - 1) * e..][..(k - 1) * e];
        for c in 0..e {
            let taps = &w.conv_weight[c * k..][..k];
            let mut acc = w.conv_bias.map_or(0.0, |bias| bias[c]);
            for j in 0..k - 1 {
                acc = taps[j].mul_add(state[j * e + c], acc);
            }
            acc = taps[k - 1].mul_add(xb[c], acc);
            u[row * e + c] = silu_scalar(acc);
        }
        state.copy_within(e.., 0);
        state[(k - 2) * e..].copy_from_slice(xb);
    }
    u
}

/// The SSM update of every (row, channel) and its gated output y [B, E].
struct SsmStep<'a> {
    w: &'a StepWeights<'a>,
    dims: MambaStepDims,
    xz: &'a [f32],
    u: &'a [f32],
    dbc: &'a [f32],
    dt: &'a [f32],
    ssm: &'a mut [f32],
}

impl Kernel for SsmStep<'_> {
    type Output = Vec<f32>;
    #[inline(always)]
    fn run(self) -> Vec<f32> {
        let SsmStep {
            w,
            dims,
            xz,
            u,
            dbc,
            dt,
            ssm,
        } = self;
        let MambaStepDims {
            batch: b,
            d_inner: e,
            d_state: n,
            dt_rank: r,
            ..
        } = dims;
        let mut y = vec![0f32; b * e];
        for row in 0..b {
            let bc = &dbc[row * (r + 2 * n)..][r..r + 2 * n];
            let (bm, cm) = bc.split_at(n);
            for c in 0..e {
                let (i, dtv, uv) = (row * e + c, dt[row * e + c], u[row * e + c]);
                let h = &mut ssm[i * n..][..n];
                let a = &w.a_log[c * n..][..n];
                let mut acc = 0f32;
                for s in 0..n {
                    let decay = simd::exp(-dtv * simd::exp(a[s]));
                    h[s] = decay.mul_add(h[s], dtv * bm[s] * uv);
                    acc = cm[s].mul_add(h[s], acc);
                }
                let z = xz[row * 2 * e + e + c];
                y[i] = w.d[c].mul_add(uv, acc) * silu_scalar(z);
            }
        }
        y
    }
}
