//! One Mamba-1 block, `x + Mixer(RMSNorm(x))`, built from the engine's ops exactly as HF
//! transformers' `MambaBlock`/`MambaMixer.slow_forward` computes it (see DESIGN.md section 3):
//!
//! ```text
//! [xb, z] = in_proj(x)                      in_proj.weight [2E, D]
//! u       = silu(causal_conv1d(xb) + bias)  conv1d.weight  [E, K] (HF stores [E, 1, K])
//! [dt_low, B, C] = x_proj(u)                x_proj.weight  [R + 2N, E]
//! dt      = softplus(dt_proj(dt_low) + dt_bias)
//! y       = selective_scan(u, dt, -exp(A_log), B, C, D, z)
//! out     = out_proj(y)                     out_proj.weight [D, E]
//! ```
//! Shapes: B batch, L time, D model width, E = expand * D, N state size, R dt rank, K conv width.

use crate::backend::Device;
use crate::error::Result;
use crate::nn::Rng;
use crate::ops;
use crate::tensor::Tensor;

/// The sizes of one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MambaDims {
    pub d_model: usize,
    pub d_inner: usize,
    pub d_state: usize,
    pub dt_rank: usize,
    pub conv_kernel: usize,
}

pub struct MambaBlock {
    pub dims: MambaDims,
    pub norm_eps: f32,
    pub norm: Tensor,
    pub in_proj: Tensor,
    pub conv_weight: Tensor,
    pub conv_bias: Tensor,
    pub x_proj: Tensor,
    pub dt_proj: Tensor,
    pub dt_bias: Tensor,
    pub a_log: Tensor,
    pub d: Tensor,
    pub out_proj: Tensor,
}

impl MambaBlock {
    /// A freshly initialised block, as HF's `MambaPreTrainedModel._init_weights` does: A_log =
    /// log(1..=N) per channel (S4D-real), D = 1, dt_bias = inverse softplus of dt drawn log-uniform
    /// in [1e-3, 1e-1], linear layers uniform in +-1/sqrt(fan_in). All tensors are variables.
    pub fn init(dims: MambaDims, norm_eps: f32, rng: &mut Rng, device: &Device) -> Result<Self> {
        let MambaDims { d_model: dm, d_inner: e, d_state: n, dt_rank: r, conv_kernel: k } = dims;
        let var = |data: Vec<f32>, shape: &[usize]| -> Result<Tensor> { Ok(Tensor::from_f32(data, shape, device)?.as_variable()) };
        let bound = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
        let a_log: Vec<f32> = (0..e).flat_map(|_| (1..=n).map(|i| (i as f32).ln())).collect();
        let dt_bias: Vec<f32> = (0..e)
            .map(|_| {
                let dt = (rng.uniform() * ((0.1f32).ln() - (0.001f32).ln()) + (0.001f32).ln()).exp().max(1e-4);
                dt + (-(-dt).exp_m1()).ln() // inverse softplus: dt + log(1 - e^-dt)
            })
            .collect();
        Ok(MambaBlock {
            dims,
            norm_eps,
            norm: var(vec![1.0; dm], &[dm])?,
            in_proj: var(rng.uniform_vec(2 * e * dm, bound(dm)), &[2 * e, dm])?,
            conv_weight: var(rng.uniform_vec(e * k, bound(k)), &[e, k])?,
            conv_bias: var(rng.uniform_vec(e, bound(k)), &[e])?,
            x_proj: var(rng.uniform_vec((r + 2 * n) * e, bound(e)), &[r + 2 * n, e])?,
            dt_proj: var(rng.uniform_vec(e * r, (r as f32).powf(-0.5)), &[e, r])?,
            dt_bias: var(dt_bias, &[e])?,
            a_log: var(a_log, &[e, n])?,
            d: var(vec![1.0; e], &[e])?,
            out_proj: var(rng.uniform_vec(dm * e, bound(e)), &[dm, e])?,
        })
    }

    pub fn parameters(&self) -> Vec<&Tensor> {
        vec![
            &self.norm,
            &self.in_proj,
            &self.conv_weight,
            &self.conv_bias,
            &self.x_proj,
            &self.dt_proj,
            &self.dt_bias,
            &self.a_log,
            &self.d,
            &self.out_proj,
        ]
    }

    /// The same parameters as `parameters`, in the same order, for an optimizer to replace.
    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        vec![
            &mut self.norm,
            &mut self.in_proj,
            &mut self.conv_weight,
            &mut self.conv_bias,
            &mut self.x_proj,
            &mut self.dt_proj,
            &mut self.dt_bias,
            &mut self.a_log,
            &mut self.d,
            &mut self.out_proj,
        ]
    }

    /// x: [B, L, D] -> [B, L, D] (the residual stream after this block).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let MambaDims { d_inner: e, d_state: n, dt_rank: r, .. } = self.dims;
        let h = ops::rms_norm(x, &self.norm, self.norm_eps)?;
        let xz = ops::linear(&h, &self.in_proj, None)?;
        let xb = ops::narrow(&xz, 2, 0, e)?;
        let z = ops::narrow(&xz, 2, e, e)?;
        let u = ops::silu(&ops::causal_conv1d(&xb, &self.conv_weight, Some(&self.conv_bias))?)?;
        let dbc = ops::linear(&u, &self.x_proj, None)?;
        let dt_low = ops::narrow(&dbc, 2, 0, r)?;
        let b = ops::narrow(&dbc, 2, r, n)?;
        let c = ops::narrow(&dbc, 2, r + n, n)?;
        let dt = ops::softplus(&ops::linear(&dt_low, &self.dt_proj, Some(&self.dt_bias))?)?;
        let a = ops::scale(&ops::exp(&self.a_log)?, -1.0)?;
        let y = ops::selective_scan(&u, &dt, &a, &b, &c, &self.d, Some(&z), None)?.y;
        ops::add(x, &ops::linear(&y, &self.out_proj, None)?)
    }
}
