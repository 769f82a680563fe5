//! One decode step of a Mamba block for B independent sequences, fused: what `MambaBlock`
//! computes from its ops for L = 1 (HF's `causal_conv1d_update` + `selective_state_update`), in one
//! call that updates the conv and SSM states in place. The op-by-op path makes ~22 tensors per
//! layer, each with its checks, its handle and its storage, and joins the conv window with concat
//! and narrow; here the conv state shifts in place and only the kernels' own vectors remain.
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
use super::scan::selective_scan;
use super::shape;
use super::unary::{exp, scale, silu, softplus};
use crate::backend::params::{MambaStepDims, ScanDims};
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
/// token in place. The pieces are the ops' own cpu kernels (rms_norm, gemm or the bf16 dots,
/// silu, softplus, the scan with L = 1), so the numbers are the composed step's; what is saved is
/// the tensors, the tape checks and the dispatches between them.
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
    let u = silu(&conv_step(w, dims, &xz, conv));
    let dbc = w.x_proj.linear(&u, b, e, r + 2 * n, None)?;
    let columns = |from: usize, width: usize| shape::narrow(&dbc, b, r + 2 * n, from, width);
    let (dt_low, b_in, c_in) = (columns(0, r), columns(r, n), columns(r + n, n));
    let dt = softplus(&w.dt_proj.linear(&dt_low, b, r, e, Some(w.dt_bias))?);
    let z = shape::narrow(&xz, b, 2 * e, e, e);
    let a = scale(&exp(w.a_log), -1.0);
    let scan_dims = ScanDims {
        batch: b,
        len: 1,
        chan: e,
        state: n,
    };
    let out = selective_scan(
        scan_dims,
        &u,
        &dt,
        &a,
        &b_in,
        &c_in,
        w.d,
        Some(&z),
        Some(ssm),
        false,
    );
    ssm.copy_from_slice(&out.last);
    let mut y = w.out_proj.linear(&out.y, b, e, dm, w.out_proj_bias)?;
    y.iter_mut().zip(x).for_each(|(o, x)| *o += x);
    debug_assert_eq!(k, w.conv_weight.len() / e);
    Ok(y)
}

/// The causal conv's output for the newest input xb (the first half of each row of xz) [B, E],
/// before its silu, and the conv state shifted by one with xb appended.
fn conv_step(w: &StepWeights, dims: MambaStepDims, xz: &[f32], conv: &mut [f32]) -> Vec<f32> {
    let MambaStepDims {
        batch: b,
        d_inner: e,
        conv_kernel: k,
        ..
    } = dims;
    let mut out = vec![0f32; b * e];
    for row in 0..b {
        let xb = &xz[row * 2 * e..][..e];
        let state = &mut conv[row * (k - 1) * e..][..(k - 1) * e];
        for c in 0..e {
            let taps = &w.conv_weight[c * k..][..k];
            let mut acc = w.conv_bias.map_or(0.0, |bias| bias[c]);
            for j in 0..k - 1 {
                acc = taps[j].mul_add(state[j * e + c], acc);
            }
            out[row * e + c] = taps[k - 1].mul_add(xb[c], acc);
        }
        state.copy_within(e.., 0);
        state[(k - 2) * e..].copy_from_slice(xb);
    }
    out
}
