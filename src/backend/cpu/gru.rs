//! The GRU cell's gates, fused: everything after the two input projections. Shapes: gi, gh [B, 3H]
//! (gate blocks r, z, n in PyTorch nn.GRUCell's order, biases already added), h [B, H]; the new
//! state and every gradient are laid out the same way.
//!
//!   r = sigmoid(gi_r + gh_r)   z = sigmoid(gi_z + gh_z)   n = tanh(gi_n + r * gh_n)
//!   h' = (1 - z) * n + z * h

use rayon::prelude::*;

use super::elementwise::{PAR_MIN, for_each_piece};
use super::unary::sigmoid;

/// The gates of one (row, unit) pair: (r, z, n).
fn gates(gi: &[f32], gh: &[f32], hidden: usize, j: usize) -> (f32, f32, f32) {
    let r = sigmoid(gi[j] + gh[j]);
    let z = sigmoid(gi[hidden + j] + gh[hidden + j]);
    let n = (gi[2 * hidden + j] + r * gh[2 * hidden + j]).tanh();
    (r, z, n)
}

/// gi, gh [B, 3H], h [B, H] -> h' [B, H].
/// One batch row's gradient slices (dgi, dgh, dh) with its index, as the parallel loop hands them out.
type BatchRowGrads<'a> = (usize, ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]));

pub fn gru_gates(gi: &[f32], gh: &[f32], h: &[f32], hidden: usize) -> Vec<f32> {
    let mut out = vec![0f32; h.len()];
    if hidden == 0 {
        return out;
    }
    for_each_piece(&mut out, hidden, |b, out_row| {
        let (gi, gh) = (
            &gi[b * 3 * hidden..(b + 1) * 3 * hidden],
            &gh[b * 3 * hidden..(b + 1) * 3 * hidden],
        );
        for (j, o) in out_row.iter_mut().enumerate() {
            let (_, z, n) = gates(gi, gh, hidden, j);
            *o = (1.0 - z) * n + z * h[b * hidden + j];
        }
    });
    out
}

/// The gradients of gi [B, 3H], gh [B, 3H] and h [B, H] from g = dL/dh' [B, H], in one pass:
///   dn = g (1 - z), dz = g (h - n), dh = g z
///   dn_pre = dn (1 - n^2): d gi_n = dn_pre, d gh_n = dn_pre r
///   dr_pre = dn_pre gh_n r (1 - r): d gi_r = d gh_r = dr_pre
///   dz_pre = dz z (1 - z): d gi_z = d gh_z = dz_pre
pub fn gru_gates_backward(
    gi: &[f32],
    gh: &[f32],
    h: &[f32],
    g: &[f32],
    hidden: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut dgi, mut dgh, mut dh) = (
        vec![0f32; gi.len()],
        vec![0f32; gh.len()],
        vec![0f32; h.len()],
    );
    if hidden == 0 {
        return (dgi, dgh, dh);
    }
    let row = |(b, ((dgi, dgh), dh)): BatchRowGrads| {
        let (gi, gh) = (
            &gi[b * 3 * hidden..(b + 1) * 3 * hidden],
            &gh[b * 3 * hidden..(b + 1) * 3 * hidden],
        );
        for j in 0..hidden {
            let (r, z, n) = gates(gi, gh, hidden, j);
            let (gj, hj) = (g[b * hidden + j], h[b * hidden + j]);
            let dn_pre = gj * (1.0 - z) * (1.0 - n * n);
            let dr_pre = dn_pre * gh[2 * hidden + j] * r * (1.0 - r);
            let dz_pre = gj * (hj - n) * z * (1.0 - z);
            dgi[j] = dr_pre;
            dgi[hidden + j] = dz_pre;
            dgi[2 * hidden + j] = dn_pre;
            dgh[j] = dr_pre;
            dgh[hidden + j] = dz_pre;
            dgh[2 * hidden + j] = dn_pre * r;
            dh[j] = gj * z;
        }
    };
    if h.len() >= PAR_MIN {
        dgi.par_chunks_mut(3 * hidden)
            .zip(dgh.par_chunks_mut(3 * hidden))
            .zip(dh.par_chunks_mut(hidden))
            .enumerate()
            .for_each(row);
    } else {
        dgi.chunks_mut(3 * hidden)
            .zip(dgh.chunks_mut(3 * hidden))
            .zip(dh.chunks_mut(hidden))
            .enumerate()
            .for_each(row);
    }
    (dgi, dgh, dh)
}
