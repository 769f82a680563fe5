//! The GRU cell of the planner's latent dynamics model, with PyTorch nn.GRUCell's conventions
//! (weights [3H, in] with gate blocks in the order r, z, n; two bias vectors):
//!
//!   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//!   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//!   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//!   h' = (1 - z) * n + z * h
//!
//! `gru_cell` is two `linear` projections and one fused `gru_gates` kernel for the rest; only the
//! gates have a backward of their own.

use crate::error::{Result, shape_err};
use crate::ops::linear;
use crate::tensor::{DType, Tensor, same_device};

/// Checks gi, gh [B, 3H] against h [B, H]; returns (B, H).
fn gate_dims(op: &'static str, gi: &Tensor, gh: &Tensor, h: &Tensor) -> Result<(usize, usize)> {
    for (t, name) in [(gi, "gi"), (gh, "gh"), (h, "h")] {
        t.expect_dtype(op, name, DType::F32)?;
    }
    let (si, sh, s) = (gi.shape(), gh.shape(), h.shape());
    let ok = s.len() == 2 && si.len() == 2 && si == sh && si[0] == s[0] && si[1] == 3 * s[1];
    if !ok {
        return shape_err(
            op,
            format!("gi {si:?} and gh {sh:?} must both be [B, 3H] for h {s:?} = [B, H]"),
        );
    }
    Ok((s[0], s[1]))
}

/// gi = x W_ih^T + b_ih: [B, 3H]; gh = h W_hh^T + b_hh: [B, 3H]; h: [B, H] -> h' [B, H]
///
/// One kernel forward, one backward producing d gi, d gh and d h together (derivation in
/// `backend/cpu/gru.rs`).
pub fn gru_gates(gi: &Tensor, gh: &Tensor, h: &Tensor) -> Result<Tensor> {
    let op = "gru_gates";
    let (batch, hidden) = gate_dims(op, gi, gh, h)?;
    let device = same_device(op, &[gi, gh, h])?;
    let out = device
        .backend()
        .gru_gates(gi.storage(), gh.storage(), h.storage(), batch, hidden)?;
    let out = Tensor::from_storage(out, &[batch, hidden], DType::F32);
    let (gi2, gh2, h2) = (gi.clone(), gh.clone(), h.clone());
    Ok(out.with_grad_fn(op, &[gi, gh, h], move |g| {
        let (dgi, dgh, dh) = gru_gates_backward(&gi2, &gh2, &h2, g)?;
        let keep = |t: &Tensor, d: Tensor| if t.requires_grad() { Some(d) } else { None };
        Ok(vec![keep(&gi2, dgi), keep(&gh2, dgh), keep(&h2, dh)])
    }))
}

/// (d gi, d gh, d h) from g = dL/dh', in one pass.
fn gru_gates_backward(
    gi: &Tensor,
    gh: &Tensor,
    h: &Tensor,
    g: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = "gru_gates_backward";
    let (batch, hidden) = gate_dims(op, gi, gh, h)?;
    if g.shape() != h.shape() {
        return shape_err(
            op,
            format!("gradient {:?} must match h {:?}", g.shape(), h.shape()),
        );
    }
    let (si, sh) = (gi.shape(), h.shape());
    let device = same_device(op, &[gi, gh, h, g])?;
    g.expect_dtype(op, "g", DType::F32)?;
    let (dgi, dgh, dh) = device.backend().gru_gates_backward(
        gi.storage(),
        gh.storage(),
        h.storage(),
        g.storage(),
        batch,
        hidden,
    )?;
    Ok((
        Tensor::from_storage(dgi, si, DType::F32),
        Tensor::from_storage(dgh, si, DType::F32),
        Tensor::from_storage(dh, sh, DType::F32),
    ))
}

/// x: [B, I], h: [B, H], w_ih: [3H, I], w_hh: [3H, H], b_ih, b_hh: [3H] -> [B, H]
///
/// Two `linear` calls and `gru_gates`; the tape differentiates the composition.
pub fn gru_cell(
    x: &Tensor,
    h: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: &Tensor,
    b_hh: &Tensor,
) -> Result<Tensor> {
    let (sx, s, swi, swh, sbi, sbh) = (
        x.shape(),
        h.shape(),
        w_ih.shape(),
        w_hh.shape(),
        b_ih.shape(),
        b_hh.shape(),
    );
    let ok = sx.len() == 2
        && s.len() == 2
        && sx[0] == s[0]
        && swi.len() == 2
        && swi[0] == 3 * s[1]
        && swi[1] == sx[1]
        && swh[..] == [3 * s[1], s[1]]
        && sbi[..] == [3 * s[1]]
        && sbh[..] == [3 * s[1]];
    if !ok {
        return shape_err(
            "gru_cell",
            format!(
                "expected x [B, I], h [B, H], w_ih [3H, I], w_hh [3H, H], b_ih [3H], b_hh [3H]; \
                 got x {sx:?}, h {s:?}, w_ih {swi:?}, w_hh {swh:?}, b_ih {sbi:?}, b_hh {sbh:?}"
            ),
        );
    }
    let gi = linear(x, w_ih, Some(b_ih))?;
    let gh = linear(h, w_hh, Some(b_hh))?;
    gru_gates(&gi, &gh, h)
}
