//! One Mamba-1 block, `x + Mixer(RMSNorm(x))`, built from the engine's ops exactly as HF
//! transformers' `MambaBlock`/`MambaMixer` computes it (modeling_mamba.py; docs/ARCHITECTURE.md,
//! The backbone):
//!
//! ```text
//! [xb, z] = in_proj(x)                      in_proj.weight [2E, D] (+ bias [2E] when use_bias)
//! u       = silu(causal_conv1d(xb) + bias)  conv1d.weight  [E, K] (HF stores [E, 1, K]); bias when use_conv_bias
//! [dt_low, B, C] = x_proj(u)                x_proj.weight  [R + 2N, E]
//! dt      = softplus(dt_proj(dt_low) + dt_bias)
//! y       = selective_scan(u, dt, -exp(A_log), B, C, D, z)
//! out     = out_proj(y)                     out_proj.weight [D, E] (+ bias [D] when use_bias)
//! ```
//! Shapes: B batch, L time, D model width, E = d_inner, N state size, R dt rank, K conv width.
//!
//! Two entry points: `forward` (training; no state in or out) and `forward_with_state`, which
//! continues a sequence from a recurrent state and returns the state after it. The latter serves
//! both prefill (L tokens) and the decode step (L = 1): HF has separate code for the step
//! (`causal_conv1d_update`, `selective_state_update`), but both are the same recurrence, and
//! composing the step from the same ops makes prefill/step agreement hold by construction.

use crate::backend::{Device, MambaStepDims, MambaStepWeights};
use crate::error::{Error, Result, shape_err};
use crate::grad_mode;
use crate::ops;
use crate::rng::Rng;
use crate::state::LayerState;
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

/// The weights of one block (HF `MambaBlock` = `norm` + `mixer`). Handles are cheap to clone.
#[derive(Clone)]
pub struct MambaBlock {
    pub dims: MambaDims,
    pub norm_eps: f32,
    pub norm: Tensor,
    pub in_proj: Tensor,
    /// HF `use_bias`: biases on in_proj and out_proj (false in every released Mamba).
    pub in_proj_bias: Option<Tensor>,
    pub conv_weight: Tensor,
    /// HF `use_conv_bias` (true in every released Mamba).
    pub conv_bias: Option<Tensor>,
    pub x_proj: Tensor,
    pub dt_proj: Tensor,
    pub dt_bias: Tensor,
    pub a_log: Tensor,
    pub d: Tensor,
    pub out_proj: Tensor,
    pub out_proj_bias: Option<Tensor>,
}

/// What `forward_with_state` returns: the block's output and the recurrent state after the input.
pub struct BlockOutput {
    /// [B, L, D], the residual stream after this block.
    pub out: Tensor,
    /// [B, K-1, E], the last K-1 pre-conv inputs (xb), oldest first; detached.
    pub conv_state: Tensor,
    /// [B, E, N], the SSM state after the last position; detached.
    pub ssm_state: Tensor,
}

impl MambaBlock {
    /// A freshly initialised block with HF's default biases (conv bias, no projection biases).
    pub fn init(dims: MambaDims, norm_eps: f32, rng: &mut Rng, device: &Device) -> Result<Self> {
        Self::init_with_bias(dims, norm_eps, false, true, rng, device)
    }

    /// A freshly initialised block, as HF's `MambaPreTrainedModel._init_weights` does: A_log =
    /// log(1..=N) per channel (S4D-real), D = 1, dt_bias = inverse softplus of dt drawn log-uniform
    /// in [1e-3, 1e-1], linear layers uniform in +-1/sqrt(fan_in), projection biases zero (HF
    /// zeroes every nn.Linear bias). All tensors are variables.
    pub fn init_with_bias(
        dims: MambaDims,
        norm_eps: f32,
        use_bias: bool,
        use_conv_bias: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        let MambaDims {
            d_model: dm,
            d_inner: e,
            d_state: n,
            dt_rank: r,
            conv_kernel: k,
        } = dims;
        let var = |data: Vec<f32>, shape: &[usize]| -> Result<Tensor> {
            Tensor::init_variable(shape, device, || data)
        };
        // The large ones are filled only on a device with values (see `Tensor::init_variable`).
        let init = |shape: &[usize], fill: &mut dyn FnMut() -> Vec<f32>| -> Result<Tensor> {
            Tensor::init_variable(shape, device, fill)
        };
        let bound = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
        let a_log: Vec<f32> = (0..e)
            .flat_map(|_| (1..=n).map(|i| (i as f32).ln()))
            .collect();
        let dt_bias: Vec<f32> = (0..e)
            .map(|_| {
                let dt = (rng.uniform() * ((0.1f32).ln() - (0.001f32).ln()) + (0.001f32).ln())
                    .exp()
                    .max(1e-4);
                dt + (-(-dt).exp_m1()).ln() // inverse softplus: dt + log(1 - e^-dt)
            })
            .collect();
        let in_proj = init(&[2 * e, dm], &mut || rng.uniform_vec(2 * e * dm, bound(dm)))?;
        let conv_weight = init(&[e, k], &mut || rng.uniform_vec(e * k, bound(k)))?;
        let conv_bias = if use_conv_bias {
            Some(var(rng.uniform_vec(e, bound(k)), &[e])?)
        } else {
            None
        };
        let x_proj = init(&[r + 2 * n, e], &mut || {
            rng.uniform_vec((r + 2 * n) * e, bound(e))
        })?;
        let dt_proj = init(&[e, r], &mut || {
            rng.uniform_vec(e * r, (r as f32).powf(-0.5))
        })?;
        let out_proj = init(&[dm, e], &mut || rng.uniform_vec(dm * e, bound(e)))?;
        let (in_proj_bias, out_proj_bias) = if use_bias {
            (
                Some(var(vec![0.0; 2 * e], &[2 * e])?),
                Some(var(vec![0.0; dm], &[dm])?),
            )
        } else {
            (None, None)
        };
        Ok(MambaBlock {
            dims,
            norm_eps,
            norm: var(vec![1.0; dm], &[dm])?,
            in_proj,
            in_proj_bias,
            conv_weight,
            conv_bias,
            x_proj,
            dt_proj,
            dt_bias: var(dt_bias, &[e])?,
            a_log: var(a_log, &[e, n])?,
            d: var(vec![1.0; e], &[e])?,
            out_proj,
            out_proj_bias,
        })
    }

    pub fn parameters(&self) -> Vec<&Tensor> {
        let mut p = vec![&self.norm, &self.in_proj];
        p.extend(&self.in_proj_bias);
        p.push(&self.conv_weight);
        p.extend(&self.conv_bias);
        p.extend([
            &self.x_proj,
            &self.dt_proj,
            &self.dt_bias,
            &self.a_log,
            &self.d,
            &self.out_proj,
        ]);
        p.extend(&self.out_proj_bias);
        p
    }

    /// The same parameters as `parameters`, in the same order, for an optimizer to replace.
    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut p = vec![&mut self.norm, &mut self.in_proj];
        p.extend(&mut self.in_proj_bias);
        p.push(&mut self.conv_weight);
        p.extend(&mut self.conv_bias);
        p.extend([
            &mut self.x_proj,
            &mut self.dt_proj,
            &mut self.dt_bias,
            &mut self.a_log,
            &mut self.d,
            &mut self.out_proj,
        ]);
        p.extend(&mut self.out_proj_bias);
        p
    }

    /// x: [B, L, D] -> [B, L, D] (the residual stream after this block), from a zero state.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (xb, z) = self.in_projection(x)?;
        let u = ops::silu(&ops::causal_conv1d(
            &xb,
            &self.conv_weight,
            self.conv_bias.as_ref(),
        )?)?;
        let y = self.ssm(&u, &z, None)?.y;
        self.out_projection(x, &y)
    }

    /// Continues a sequence: x [B, L, D] after a state (conv [B, K-1, E], ssm [B, E, N]; zeros for a
    /// fresh sequence) -> the block's output and the state after x. With zero states the output
    /// equals `forward(x)` (zeros in front of the conv input are what causal padding adds).
    ///
    /// Conv: HF keeps the last K inputs and, per step, rolls them left and appends the new one
    /// (`causal_conv1d_update`); here the K-1 stored inputs are put in front of xb, the causal
    /// conv runs over [B, K-1+L, E] and the first K-1 outputs (which would look into the padding)
    /// are dropped. SSM: the scan starts from h0 = the stored state; its last state is the new one.
    pub fn forward_with_state(
        &self,
        x: &Tensor,
        conv_state: &Tensor,
        ssm_state: &Tensor,
    ) -> Result<BlockOutput> {
        const OP: &str = "MambaBlock::forward_with_state";
        let MambaDims {
            d_model,
            d_inner: e,
            d_state: n,
            conv_kernel: k,
            ..
        } = self.dims;
        let &[b, l, dx] = x.shape() else {
            return shape_err(
                OP,
                format!("x must be [B, L, D = {d_model}], got {:?}", x.shape()),
            );
        };
        if k < 2 {
            return shape_err(
                OP,
                format!(
                    "a conv width K = {k} leaves no conv state to carry (K must be at least 2)"
                ),
            );
        }
        if dx != d_model || l == 0 {
            return shape_err(
                OP,
                format!("x must be [B, L >= 1, D = {d_model}], got {:?}", x.shape()),
            );
        }
        if conv_state.shape() != [b, k - 1, e] || ssm_state.shape() != [b, e, n] {
            return shape_err(
                OP,
                format!(
                    "states must be conv [B, K-1, E] = {:?} and ssm [B, E, N] = {:?} for x {:?}, got conv {:?} and ssm {:?}",
                    [b, k - 1, e],
                    [b, e, n],
                    x.shape(),
                    conv_state.shape(),
                    ssm_state.shape()
                ),
            );
        }
        let (xb, z) = self.in_projection(x)?;
        let window = ops::concat(&[conv_state, &xb], 1)?; // [B, K-1+L, E]
        let conv = ops::causal_conv1d(&window, &self.conv_weight, self.conv_bias.as_ref())?;
        let u = ops::silu(&ops::narrow(&conv, 1, k - 1, l)?)?;
        let scan = self.ssm(&u, &z, Some(ssm_state))?;
        let out = self.out_projection(x, &scan.y)?;
        // The state is what the next call reads, never part of a training graph.
        let conv_state = ops::narrow(&window, 1, l, k - 1)?.detach();
        Ok(BlockOutput {
            out,
            conv_state,
            ssm_state: scan.last_state,
        })
    }

    /// One decode step of B independent sequences: x [B, D] -> the residual stream after this
    /// block [B, D], advancing `state` by one token. Where the device has the fused kernel
    /// (`Backend::mamba_step`) and no gradient is being recorded, the states are updated in place
    /// (copied first if anyone else holds them, so a clone or snapshot never changes); otherwise
    /// the step is `forward_with_state` with L = 1. Both compute the same numbers.
    pub fn step(&self, x: &Tensor, state: &mut LayerState) -> Result<Tensor> {
        if !grad_mode::is_grad_enabled() {
            match self.fused_step(x, state) {
                Err(Error::Unsupported { .. }) => {}
                result => return result,
            }
        }
        let &[b, d] = x.shape() else {
            return shape_err(
                "MambaBlock::step",
                format!("x must be [B, D], got {:?}", x.shape()),
            );
        };
        let o = self.forward_with_state(&x.reshape(&[b, 1, d])?, &state.conv, &state.ssm)?;
        state.conv = o.conv_state;
        state.ssm = o.ssm_state;
        o.out.reshape(&[b, d])
    }

    fn fused_step(&self, x: &Tensor, state: &mut LayerState) -> Result<Tensor> {
        const OP: &str = "MambaBlock::step";
        let MambaDims {
            d_model,
            d_inner: e,
            d_state: n,
            dt_rank,
            conv_kernel: k,
        } = self.dims;
        let &[batch, dx] = x.shape() else {
            return shape_err(OP, format!("x must be [B, D], got {:?}", x.shape()));
        };
        if dx != d_model
            || k < 2
            || state.conv.shape() != [batch, k - 1, e]
            || state.ssm.shape() != [batch, e, n]
        {
            return shape_err(
                OP,
                format!(
                    "x {:?}, conv {:?} and ssm {:?} must be [B, {d_model}], [B, {}, {e}] and [B, {e}, {n}]",
                    x.shape(),
                    state.conv.shape(),
                    state.ssm.shape(),
                    k.saturating_sub(1)
                ),
            );
        }
        let device = x.device();
        let weights = MambaStepWeights {
            norm: self.norm.storage(),
            in_proj: self.in_proj.storage(),
            in_proj_bias: self.in_proj_bias.as_ref().map(Tensor::storage),
            conv_weight: self.conv_weight.storage(),
            conv_bias: self.conv_bias.as_ref().map(Tensor::storage),
            x_proj: self.x_proj.storage(),
            dt_proj: self.dt_proj.storage(),
            dt_bias: self.dt_bias.storage(),
            a_log: self.a_log.storage(),
            d: self.d.storage(),
            out_proj: self.out_proj.storage(),
            out_proj_bias: self.out_proj_bias.as_ref().map(Tensor::storage),
        };
        let dims = MambaStepDims {
            batch,
            d_model,
            d_inner: e,
            d_state: n,
            dt_rank,
            conv_kernel: k,
            norm_eps: self.norm_eps,
        };
        // In place only where nobody else can see it: a state someone else holds is copied first.
        for t in [&mut state.conv, &mut state.ssm] {
            if t.unique_storage_mut().is_none() {
                *t = t.deep_clone()?;
            }
        }
        let LayerState { conv, ssm } = state;
        let (Some(conv), Some(ssm)) = (conv.unique_storage_mut(), ssm.unique_storage_mut()) else {
            return Err(Error::InvalidArgument {
                op: OP,
                detail: "a fresh state copy is shared".into(),
            });
        };
        let out = device
            .backend()
            .mamba_step(&weights, dims, x.storage(), conv, ssm)?;
        Ok(Tensor::from_storage(
            out,
            &[batch, d_model],
            crate::dtype::DType::F32,
        ))
    }

    /// RMSNorm then in_proj, as the conv/SSM branch xb and the gate z, each [B, L, E]. One of the
    /// two operands of HF's [2E, D] product must be split, and the smaller one is copied: with
    /// more tokens than D (training batches) the weight's halves, as two [E, D] products (slicing
    /// the [B, L, 2E] product instead copied the activations twice forward, padded both gradients
    /// back to [B, L, 2E] and added them: ~3.5% of a cpu training step); with fewer (a decode
    /// step, B L = 1) the product's halves, since copying the weight each step would read and
    /// write it twice more than the product reads it.
    fn in_projection(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let e = self.dims.d_inner;
        let h = ops::rms_norm(x, &self.norm, self.norm_eps)?;
        let tokens = h.elem_count() / self.dims.d_model;
        if tokens < self.dims.d_model {
            let both = ops::linear(&h, &self.in_proj, self.in_proj_bias.as_ref())?;
            let last = both.rank() - 1;
            return Ok((
                ops::narrow(&both, last, 0, e)?,
                ops::narrow(&both, last, e, e)?,
            ));
        }
        let half = |start: usize| -> Result<Tensor> {
            let weight = ops::narrow(&self.in_proj, 0, start, e)?;
            let bias = match &self.in_proj_bias {
                Some(b) => Some(ops::narrow(b, 0, start, e)?),
                None => None,
            };
            ops::linear(&h, &weight, bias.as_ref())
        };
        Ok((half(0)?, half(e)?))
    }

    /// The selective SSM on the conv output u [B, L, E], gated by z, from h0 (zeros when None).
    fn ssm(&self, u: &Tensor, z: &Tensor, h0: Option<&Tensor>) -> Result<ops::ScanOutput> {
        let MambaDims {
            d_state: n,
            dt_rank: r,
            ..
        } = self.dims;
        let dbc = ops::linear(u, &self.x_proj, None)?;
        let dt_low = ops::narrow(&dbc, 2, 0, r)?;
        let b = ops::narrow(&dbc, 2, r, n)?;
        let c = ops::narrow(&dbc, 2, r + n, n)?;
        let dt = ops::softplus(&ops::linear(&dt_low, &self.dt_proj, Some(&self.dt_bias))?)?;
        let a = ops::scale(&ops::exp(&self.a_log)?, -1.0)?;
        ops::selective_scan(u, &dt, &a, &b, &c, &self.d, Some(z), h0)
    }

    /// The residual add after out_proj: x + out_proj(y).
    fn out_projection(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        ops::add(
            x,
            &ops::linear(y, &self.out_proj, self.out_proj_bias.as_ref())?,
        )
    }
}
