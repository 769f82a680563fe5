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

use crate::backend::{ScanForward, ScanInputs};
use crate::error::{Result, shape_err};
use crate::grad_mode;
use crate::tensor::{DType, Tensor, same_device};

pub use crate::backend::{SCAN_CHUNK, SCAN_MAX_STATE, ScanDims, ScanGrads};

const OP: &str = "selective_scan";

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
    let record = grad_mode::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
    let ScanDims {
        batch,
        len,
        chan,
        state,
    } = dims;
    let tensors = ScanInputs {
        u: u.clone(),
        delta: delta.clone(),
        a: a.clone(),
        b: b.clone(),
        c: c.clone(),
        d: d.clone(),
        z: z.cloned(),
        h0: h0.cloned(),
    };
    let args = storages(&tensors)?;
    let ScanForward { y, last, saved } = device.backend().selective_scan(dims, args, record)?;
    let f32 = |s, shape: &[usize]| Tensor::from_storage(s, shape, DType::F32);
    let y = f32(y, &[batch, len, chan]);
    let last_state = f32(last, &[batch, chan, state]);
    let saved = saved.map(|s| f32(s, &[batch, dims.n_chunks(), chan, state]));
    let Some(saved) = saved else {
        return Ok(ScanOutput { y, last_state });
    };
    // The closure holds the inputs and the (detached) checkpoints, never y itself.
    let y = y.with_grad_fn(OP, &inputs, move |gy| {
        let grads = backward(dims, &tensors, &saved, gy)?;
        let t = &tensors;
        let keep = |t: &Tensor, g: Tensor| t.requires_grad().then_some(g);
        // One gradient per input, in the order of `inputs`: u, delta, a, b, c, d, [z], [h0].
        let mut out = vec![
            keep(&t.u, grads.du),
            keep(&t.delta, grads.ddelta),
            keep(&t.a, grads.da),
            keep(&t.b, grads.db),
            keep(&t.c, grads.dc),
            keep(&t.d, grads.dd),
        ];
        if let Some(z) = &t.z {
            out.push(grads.dz.filter(|_| z.requires_grad()));
        }
        if let Some(h0) = &t.h0 {
            out.push(keep(h0, grads.dh0));
        }
        Ok(out)
    });
    Ok(ScanOutput { y, last_state })
}

/// The inputs' storage, for the contract's scan kernels.
fn storages(t: &ScanInputs<Tensor>) -> Result<ScanInputs<&crate::backend::Storage>> {
    t.as_ref().try_map(|t, _| Ok(t.storage()))
}

/// All gradients of one scan from y's gradient `gy` [B, L, E] and the forward's checkpoints.
fn backward(
    dims: ScanDims,
    inputs: &ScanInputs<Tensor>,
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
    let device = same_device(OPB, &[&inputs.u, gy])?;
    gy.expect_dtype(OPB, "gy", DType::F32)?;
    let args = storages(inputs)?;
    let g = device
        .backend()
        .selective_scan_backward(dims, args, saved.storage(), gy.storage())?;
    let f32 = |s, shape: &[usize]| Tensor::from_storage(s, shape, DType::F32);
    Ok(ScanGrads {
        du: f32(g.du, &ble),
        ddelta: f32(g.ddelta, &ble),
        da: f32(g.da, &en),
        db: f32(g.db, &bln),
        dc: f32(g.dc, &bln),
        dd: f32(g.dd, &[chan]),
        dz: g.dz.map(|v| f32(v, &ble)),
        dh0: f32(g.dh0, &ben),
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
