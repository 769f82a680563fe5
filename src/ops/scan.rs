//! The selective scan of Mamba-1 (the S6 recurrence), the heart of the backbone: forward, and a
//! backward that recomputes states from chunk-boundary checkpoints rather than storing all of them.
//!
//! Per batch b, channel e and state n (mamba-ssm's `selective_scan_ref`, HF `MambaMixer.slow_forward`):
//!
//! ```text
//! h_t[e,n] = exp(delta_t[e] * A[e,n]) * h_{t-1}[e,n] + delta_t[e] * B_t[n] * u_t[e]     (h_{-1} = h0 or 0)
//! y_t[e]   = sum_n C_t[n] * h_t[e,n] + D[e] * u_t[e]
//! y_t[e]  *= silu(z_t[e])                                                              (when z is given)
//! ```
//!
//! The backward is the same recurrence run in reverse (dh carries from t to t-1 through
//! exp(delta A)); h_{t-1} comes from re-running the forward inside each chunk of `SCAN_CHUNK`
//! steps from the state the forward saved at the chunk's start, as mamba-ssm's kernel does.
//! This op is not for the decode step (one token): that is a plain update of `[E, N]` states.

use crate::autograd;
use crate::backend::{Device, cpu, wgpu};
use crate::error::{Result, shape_err};
use crate::tensor::{DType, Tensor, same_device};

const OP: &str = "selective_scan";

/// The forward saves the state every `SCAN_CHUNK` steps (the state before step `k * SCAN_CHUNK`);
/// the backward recomputes the states inside one chunk from it. Matches `CHUNK` in shaders/scan.wgsl.
pub const SCAN_CHUNK: usize = 64;

/// The largest state size the kernels take: one workgroup of 256 holds every state of a channel.
pub const SCAN_MAX_STATE: usize = 256;

/// Sizes of one scan: batch B, length L, channels E (d_inner), states N (d_state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanDims {
    pub batch: usize,
    pub len: usize,
    pub chan: usize,
    pub state: usize,
}

impl ScanDims {
    /// Number of saved chunk-boundary states per (batch, channel): ceil(L / SCAN_CHUNK).
    pub fn n_chunks(&self) -> usize {
        self.len.div_ceil(SCAN_CHUNK)
    }
}

/// The gradients of one scan, as host vectors or device buffers. `dz` is present when z was given.
pub struct ScanGrads<T> {
    /// [B, L, E]
    pub du: T,
    /// [B, L, E]
    pub ddelta: T,
    /// [E, N], summed over batch and time.
    pub da: T,
    /// [B, L, N], summed over channels.
    pub db: T,
    /// [B, L, N], summed over channels.
    pub dc: T,
    /// [E], summed over batch and time.
    pub dd: T,
    /// [B, L, E]
    pub dz: Option<T>,
    /// [B, E, N]: dh carried past the first step.
    pub dh0: T,
}

pub struct ScanOutput {
    /// [B, L, E], on the tape: gradients flow to every input through y.
    pub y: Tensor,
    /// [B, E, N], the state after the last step. Detached (no gradient flows back through it): it is
    /// what the recurrent decode path continues from, not part of the training graph.
    pub last_state: Tensor,
}

/// The selective scan (see the module doc). u, delta: [B, L, E]; a: [E, N] (already negative,
/// A = -exp(A_log)); b, c: [B, L, N]; d: [E]; z: optional gate [B, L, E] (y *= silu(z)); h0:
/// optional initial state [B, E, N] (zeros when None). delta is used as given: the caller applies
/// softplus and the dt bias. N is at most `SCAN_MAX_STATE`.
///
/// On wgpu every binding must fit `max_storage_buffer_binding_size` (128 MiB on lavapipe); a larger
/// scan returns `Error::BindingTooLarge` (unlike the vocabulary-sized ops, the scan does not split
/// its batch into chunks that fit: split it yourself).
#[allow(clippy::too_many_arguments)]
pub fn selective_scan(
    u: &Tensor,
    delta: &Tensor,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    d: &Tensor,
    z: Option<&Tensor>,
    h0: Option<&Tensor>,
) -> Result<ScanOutput> {
    let dims = check_shapes(u, delta, a, b, c, d, z, h0)?;
    let mut inputs: Vec<&Tensor> = vec![u, delta, a, b, c, d];
    inputs.extend(z);
    inputs.extend(h0);
    let device = same_device(OP, &inputs)?;
    // Checkpoints are only needed when a backward can follow.
    let record = autograd::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
    let ScanDims {
        batch,
        len,
        chan,
        state,
    } = dims;
    let (y, last_state, saved) = match &device {
        Device::Cpu => {
            let z_ = z.map(|t| t.cpu_f32(OP, "z")).transpose()?;
            let h0_ = h0.map(|t| t.cpu_f32(OP, "h0")).transpose()?;
            let (u_, delta_, a_, b_) = (
                u.cpu_f32(OP, "u")?,
                delta.cpu_f32(OP, "delta")?,
                a.cpu_f32(OP, "a")?,
                b.cpu_f32(OP, "b")?,
            );
            let (c_, d_) = (c.cpu_f32(OP, "c")?, d.cpu_f32(OP, "d")?);
            let out = cpu::scan::selective_scan(dims, u_, delta_, a_, b_, c_, d_, z_, h0_, record);
            let saved = out
                .saved
                .map(|s| Tensor::from_cpu(s, &[batch, dims.n_chunks(), chan, state]));
            (
                Tensor::from_cpu(out.y, &[batch, len, chan]),
                Tensor::from_cpu(out.last, &[batch, chan, state]),
                saved,
            )
        }
        Device::Wgpu(ctx) => {
            let z_ = z.map(|t| t.gpu(OP, "z")).transpose()?;
            let h0_ = h0.map(|t| t.gpu(OP, "h0")).transpose()?;
            let (u_, delta_, a_, b_) = (
                u.gpu(OP, "u")?,
                delta.gpu(OP, "delta")?,
                a.gpu(OP, "a")?,
                b.gpu(OP, "b")?,
            );
            let (c_, d_) = (c.gpu(OP, "c")?, d.gpu(OP, "d")?);
            let out =
                wgpu::scan::selective_scan(ctx, dims, u_, delta_, a_, b_, c_, d_, z_, h0_, record)?;
            let saved = out
                .saved
                .map(|s| Tensor::from_gpu(s, &[batch, dims.n_chunks(), chan, state], DType::F32));
            (
                Tensor::from_gpu(out.y, &[batch, len, chan], DType::F32),
                Tensor::from_gpu(out.last, &[batch, chan, state], DType::F32),
                saved,
            )
        }
    };
    let Some(saved) = saved else {
        return Ok(ScanOutput { y, last_state });
    };
    // The closure holds the inputs and the (detached) checkpoints, never y itself.
    let (u2, delta2, a2, b2, c2, d2) = (
        u.clone(),
        delta.clone(),
        a.clone(),
        b.clone(),
        c.clone(),
        d.clone(),
    );
    let z2 = z.cloned();
    let h0_grad = h0.map(|t| t.requires_grad());
    let y = y.with_grad_fn(OP, &inputs, move |gy| {
        let grads = backward(
            dims,
            &u2,
            &delta2,
            &a2,
            &b2,
            &c2,
            &d2,
            z2.as_ref(),
            &saved,
            gy,
        )?;
        let keep = |t: &Tensor, g: Tensor| t.requires_grad().then_some(g);
        // One gradient per input, in the order of `inputs`: u, delta, a, b, c, d, [z], [h0].
        let mut out = vec![
            keep(&u2, grads.du),
            keep(&delta2, grads.ddelta),
            keep(&a2, grads.da),
            keep(&b2, grads.db),
            keep(&c2, grads.dc),
            keep(&d2, grads.dd),
        ];
        if let Some(z) = &z2 {
            out.push(grads.dz.filter(|_| z.requires_grad()));
        }
        if let Some(wants) = h0_grad {
            out.push(wants.then_some(grads.dh0));
        }
        Ok(out)
    });
    Ok(ScanOutput { y, last_state })
}

/// All gradients of one scan from y's gradient `gy` [B, L, E] and the forward's checkpoints.
#[allow(clippy::too_many_arguments)]
fn backward(
    dims: ScanDims,
    u: &Tensor,
    delta: &Tensor,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    d: &Tensor,
    z: Option<&Tensor>,
    saved: &Tensor,
    gy: &Tensor,
) -> Result<ScanGrads<Tensor>> {
    const OPB: &str = "selective_scan_backward";
    let ScanDims {
        batch,
        len,
        chan,
        state,
    } = dims;
    let (ble, bln, en, ben) = (
        [batch, len, chan],
        [batch, len, state],
        [chan, state],
        [batch, chan, state],
    );
    Ok(match same_device(OPB, &[u, gy])? {
        Device::Cpu => {
            let z_ = z.map(|t| t.cpu_f32(OPB, "z")).transpose()?;
            let (u_, delta_, a_, b_) = (
                u.cpu_f32(OPB, "u")?,
                delta.cpu_f32(OPB, "delta")?,
                a.cpu_f32(OPB, "a")?,
                b.cpu_f32(OPB, "b")?,
            );
            let (c_, d_, saved_, gy_) = (
                c.cpu_f32(OPB, "c")?,
                d.cpu_f32(OPB, "d")?,
                saved.cpu_f32(OPB, "saved")?,
                gy.cpu_f32(OPB, "gy")?,
            );
            let g = cpu::scan::selective_scan_backward(
                dims, u_, delta_, a_, b_, c_, d_, z_, saved_, gy_,
            );
            ScanGrads {
                du: Tensor::from_cpu(g.du, &ble),
                ddelta: Tensor::from_cpu(g.ddelta, &ble),
                da: Tensor::from_cpu(g.da, &en),
                db: Tensor::from_cpu(g.db, &bln),
                dc: Tensor::from_cpu(g.dc, &bln),
                dd: Tensor::from_cpu(g.dd, &[chan]),
                dz: g.dz.map(|v| Tensor::from_cpu(v, &ble)),
                dh0: Tensor::from_cpu(g.dh0, &ben),
            }
        }
        Device::Wgpu(ctx) => {
            let z_ = z.map(|t| t.gpu(OPB, "z")).transpose()?;
            let (u_, delta_, a_, b_) = (
                u.gpu(OPB, "u")?,
                delta.gpu(OPB, "delta")?,
                a.gpu(OPB, "a")?,
                b.gpu(OPB, "b")?,
            );
            let (c_, d_, saved_, gy_) = (
                c.gpu(OPB, "c")?,
                d.gpu(OPB, "d")?,
                saved.gpu(OPB, "saved")?,
                gy.gpu(OPB, "gy")?,
            );
            let g = wgpu::scan::selective_scan_backward(
                &ctx, dims, u_, delta_, a_, b_, c_, d_, z_, saved_, gy_,
            )?;
            let t = |buf, shape: &[usize]| Tensor::from_gpu(buf, shape, DType::F32);
            ScanGrads {
                du: t(g.du, &ble),
                ddelta: t(g.ddelta, &ble),
                da: t(g.da, &en),
                db: t(g.db, &bln),
                dc: t(g.dc, &bln),
                dd: t(g.dd, &[chan]),
                dz: g.dz.map(|v| t(v, &ble)),
                dh0: t(g.dh0, &ben),
            }
        }
    })
}

/// Checks every input's dtype and shape against u's [B, L, E] and a's [E, N]; errors name the op,
/// the argument and the shapes.
#[allow(clippy::too_many_arguments)]
fn check_shapes(
    u: &Tensor,
    delta: &Tensor,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    d: &Tensor,
    z: Option<&Tensor>,
    h0: Option<&Tensor>,
) -> Result<ScanDims> {
    let named: [(&'static str, Option<&Tensor>); 8] = [
        ("u", Some(u)),
        ("delta", Some(delta)),
        ("a", Some(a)),
        ("b", Some(b)),
        ("c", Some(c)),
        ("d", Some(d)),
        ("z", z),
        ("h0", h0),
    ];
    for (arg, t) in named {
        if let Some(t) = t {
            t.expect_dtype(OP, arg, DType::F32)?;
        }
    }
    let (us, as_) = (u.shape(), a.shape());
    if us.len() != 3 {
        return shape_err(OP, format!("u must be [B, L, E], got {us:?}"));
    }
    if as_.len() != 2 {
        return shape_err(OP, format!("a must be [E, N], got {as_:?}"));
    }
    let dims = ScanDims {
        batch: us[0],
        len: us[1],
        chan: us[2],
        state: as_[1],
    };
    let ScanDims {
        batch,
        len,
        chan,
        state,
    } = dims;
    if batch == 0 || len == 0 || chan == 0 || state == 0 {
        return shape_err(
            OP,
            format!("empty scan: u {us:?}, a {as_:?} (B, L, E and N must be at least 1)"),
        );
    }
    if state > SCAN_MAX_STATE {
        return shape_err(
            OP,
            format!(
                "state size N = {state} (a {as_:?}) exceeds the supported maximum of {SCAN_MAX_STATE}"
            ),
        );
    }
    let want = |arg: &str, t: &Tensor, shape: &[usize], what: &str| -> Result<()> {
        if t.shape() != shape {
            return shape_err(
                OP,
                format!(
                    "{arg} must be {what} = {shape:?} for u {us:?} and a {as_:?}, got {:?}",
                    t.shape()
                ),
            );
        }
        Ok(())
    };
    want("delta", delta, us, "[B, L, E]")?;
    want("a", a, &[chan, state], "[E, N]")?;
    want("b", b, &[batch, len, state], "[B, L, N]")?;
    want("c", c, &[batch, len, state], "[B, L, N]")?;
    want("d", d, &[chan], "[E]")?;
    if let Some(z) = z {
        want("z", z, us, "[B, L, E]")?;
    }
    if let Some(h0) = h0 {
        want("h0", h0, &[batch, chan, state], "[B, E, N]")?;
    }
    Ok(dims)
}
