//! Selective scan (Mamba-1's S6 recurrence), forward and backward; see `ops::scan` for the math.
//!
//! Shapes: u, delta, z, y, gy: [B, L, E]; a: [E, N]; b, c: [B, L, N]; d: [E]; h0, last, dh0:
//! [B, E, N]; saved: [B, nc, E, N] with nc = ceil(L / SCAN_CHUNK), saved[b, k] = the state before
//! step k * SCAN_CHUNK.
//!
//! Work is split into tasks of (batch, block of `BLOCK` channels) run with rayon. A task walks time
//! with its block's states `[BLOCK, N]` in one buffer, so the inner loop over n is contiguous in the
//! states, a, B_t and C_t; nothing is allocated per step. Each task writes its own slices, which
//! are then scattered into the outputs; sums across tasks (dB, dC over channels; dA, dD over the
//! batch) add the tasks' partials in a fixed order, so results do not depend on scheduling.

use rayon::prelude::*;

use super::unary::sigmoid;
use crate::ops::{SCAN_CHUNK, ScanDims, ScanGrads};

/// Channels per task: enough work per task to amortise rayon, enough tasks to fill the cores.
const BLOCK: usize = 32;

/// The tasks: (batch index, first channel, channel count).
fn tasks(dims: ScanDims) -> Vec<(usize, usize, usize)> {
    let blocks = dims.chan.div_ceil(BLOCK);
    (0..dims.batch * blocks)
        .map(|i| {
            let (bi, blk) = (i / blocks, i % blocks);
            let e0 = blk * BLOCK;
            (bi, e0, BLOCK.min(dims.chan - e0))
        })
        .collect()
}

// ---- forward -------------------------------------------------------------------------------------

pub struct ScanForward {
    /// [B, L, E]
    pub y: Vec<f32>,
    /// [B, E, N]
    pub last: Vec<f32>,
    /// [B, nc, E, N] when `save` was asked for.
    pub saved: Option<Vec<f32>>,
}

/// One task's results: y [L, ne], last [ne, N], saved [nc, ne, N].
struct BlockForward {
    y: Vec<f32>,
    last: Vec<f32>,
    saved: Vec<f32>,
}

#[allow(clippy::too_many_arguments)]
pub fn selective_scan(
    dims: ScanDims,
    u: &[f32],
    delta: &[f32],
    a: &[f32],
    b: &[f32],
    c: &[f32],
    d: &[f32],
    z: Option<&[f32]>,
    h0: Option<&[f32]>,
    save: bool,
) -> ScanForward {
    let ScanDims {
        batch,
        len,
        chan: ne_all,
        state: ns,
    } = dims;
    let nc = dims.n_chunks();
    let tasks = tasks(dims);
    let results: Vec<BlockForward> = tasks
        .par_iter()
        .map(|&(bi, e0, ne)| {
            let mut h = vec![0f32; ne * ns];
            if let Some(h0) = h0 {
                h.copy_from_slice(&h0[(bi * ne_all + e0) * ns..][..ne * ns]);
            }
            let mut y = vec![0f32; len * ne];
            let mut saved = if save {
                vec![0f32; nc * ne * ns]
            } else {
                Vec::new()
            };
            for t in 0..len {
                if save && t % SCAN_CHUNK == 0 {
                    saved[(t / SCAN_CHUNK) * ne * ns..][..ne * ns].copy_from_slice(&h);
                }
                let row = bi * len + t;
                let (bt, ct) = (&b[row * ns..][..ns], &c[row * ns..][..ns]);
                for j in 0..ne {
                    let e = e0 + j;
                    let (dt, ut) = (delta[row * ne_all + e], u[row * ne_all + e]);
                    let (he, ae) = (&mut h[j * ns..][..ns], &a[e * ns..][..ns]);
                    let mut acc = 0f32;
                    for n in 0..ns {
                        he[n] = (dt * ae[n]).exp() * he[n] + dt * bt[n] * ut;
                        acc += ct[n] * he[n];
                    }
                    let mut out = acc + d[e] * ut;
                    if let Some(z) = z {
                        let zt = z[row * ne_all + e];
                        out *= zt * sigmoid(zt);
                    }
                    y[t * ne + j] = out;
                }
            }
            BlockForward { y, last: h, saved }
        })
        .collect();

    let mut out = ScanForward {
        y: vec![0f32; batch * len * ne_all],
        last: vec![0f32; batch * ne_all * ns],
        saved: save.then(|| vec![0f32; batch * nc * ne_all * ns]),
    };
    for (&(bi, e0, ne), r) in tasks.iter().zip(&results) {
        for t in 0..len {
            out.y[(bi * len + t) * ne_all + e0..][..ne].copy_from_slice(&r.y[t * ne..][..ne]);
        }
        out.last[(bi * ne_all + e0) * ns..][..ne * ns].copy_from_slice(&r.last);
        if let Some(saved) = &mut out.saved {
            for k in 0..nc {
                saved[((bi * nc + k) * ne_all + e0) * ns..][..ne * ns]
                    .copy_from_slice(&r.saved[k * ne * ns..][..ne * ns]);
            }
        }
    }
    out
}

// ---- backward ------------------------------------------------------------------------------------

/// One task's results: du, ddelta, dz [L, ne]; db, dc [L, N] (summed over the block's channels);
/// da [ne, N] and dd [ne] (summed over time); dh0 [ne, N].
struct BlockGrads {
    du: Vec<f32>,
    ddelta: Vec<f32>,
    dz: Vec<f32>,
    db: Vec<f32>,
    dc: Vec<f32>,
    da: Vec<f32>,
    dd: Vec<f32>,
    dh0: Vec<f32>,
}

/// The reverse scan (the chain rule of the forward, step by step from t = L-1 down to 0):
///
/// ```text
/// g       = gy_t * silu(z_t)                       (gy_t without z)
/// dz_t    = gy_t * (sum_n C_t h_t + D u_t) * silu'(z_t)
/// dh     += g * C_t                               dC_t += g * h_t          dD += g * u_t
/// ddelta_t = sum_n dh * (A exp(delta A) h_{t-1} + B_t u_t)
/// dA     += dh * delta_t * exp(delta A) * h_{t-1}  dB_t += dh * delta_t * u_t
/// du_t    = g * D + delta_t * sum_n dh * B_t
/// dh     *= exp(delta_t A)                        (now the gradient of h_{t-1}; after t = 0, dh0)
/// ```
///
/// The states h_{t-1}, h_t of a chunk are recomputed from `saved` into a `[SCAN_CHUNK + 1, ne, N]`
/// buffer, together with exp(delta A), before the chunk is walked backwards.
#[allow(clippy::too_many_arguments)]
pub fn selective_scan_backward(
    dims: ScanDims,
    u: &[f32],
    delta: &[f32],
    a: &[f32],
    b: &[f32],
    c: &[f32],
    d: &[f32],
    z: Option<&[f32]>,
    saved: &[f32],
    gy: &[f32],
) -> ScanGrads<Vec<f32>> {
    let ScanDims {
        batch,
        len,
        chan: ne_all,
        state: ns,
    } = dims;
    let nc = dims.n_chunks();
    let tasks = tasks(dims);
    let results: Vec<BlockGrads> = tasks
        .par_iter()
        .map(|&(bi, e0, ne)| {
            let size = ne * ns;
            let mut g = BlockGrads {
                du: vec![0f32; len * ne],
                ddelta: vec![0f32; len * ne],
                dz: if z.is_some() {
                    vec![0f32; len * ne]
                } else {
                    Vec::new()
                },
                db: vec![0f32; len * ns],
                dc: vec![0f32; len * ns],
                da: vec![0f32; size],
                dd: vec![0f32; ne],
                dh0: vec![0f32; size],
            };
            // hs[j] = the state before step t0 + j; dAs[j] = exp(delta A) at step t0 + j.
            let mut hs = vec![0f32; (SCAN_CHUNK + 1) * size];
            let mut das = vec![0f32; SCAN_CHUNK * size];
            let dh = &mut g.dh0;
            for k in (0..nc).rev() {
                let t0 = k * SCAN_CHUNK;
                let steps = SCAN_CHUNK.min(len - t0);
                hs[..size].copy_from_slice(&saved[((bi * nc + k) * ne_all + e0) * ns..][..size]);
                for s in 0..steps {
                    let row = bi * len + t0 + s;
                    let bt = &b[row * ns..][..ns];
                    let (prev, next) = hs[s * size..(s + 2) * size].split_at_mut(size);
                    for j in 0..ne {
                        let e = e0 + j;
                        let (dt, ut) = (delta[row * ne_all + e], u[row * ne_all + e]);
                        let ae = &a[e * ns..][..ns];
                        let da_s = &mut das[s * size + j * ns..][..ns];
                        for n in 0..ns {
                            da_s[n] = (dt * ae[n]).exp();
                            next[j * ns + n] = da_s[n] * prev[j * ns + n] + dt * bt[n] * ut;
                        }
                    }
                }
                for s in (0..steps).rev() {
                    let t = t0 + s;
                    let row = bi * len + t;
                    let (bt, ct) = (&b[row * ns..][..ns], &c[row * ns..][..ns]);
                    let (db_t, dc_t) = (&mut g.db[t * ns..][..ns], &mut g.dc[t * ns..][..ns]);
                    for j in 0..ne {
                        let e = e0 + j;
                        let i = row * ne_all + e;
                        let (dt, ut, gyt) = (delta[i], u[i], gy[i]);
                        let gate = z.map(|z| {
                            let s = sigmoid(z[i]);
                            (z[i] * s, s + z[i] * s * (1.0 - s))
                        });
                        let gss = match gate {
                            Some((silu, _)) => gyt * silu,
                            None => gyt,
                        };
                        let ae = &a[e * ns..][..ns];
                        let h_prev = &hs[s * size + j * ns..][..ns];
                        let h_t = &hs[(s + 1) * size + j * ns..][..ns];
                        let da_s = &das[s * size + j * ns..][..ns];
                        let (dh_e, da_e) = (&mut dh[j * ns..][..ns], &mut g.da[j * ns..][..ns]);
                        let (mut sum_y, mut sum_delta, mut sum_u) = (0f32, 0f32, 0f32);
                        for n in 0..ns {
                            dh_e[n] += gss * ct[n];
                            dc_t[n] += gss * h_t[n];
                            sum_y += ct[n] * h_t[n];
                            sum_delta += dh_e[n] * (ae[n] * da_s[n] * h_prev[n] + bt[n] * ut);
                            da_e[n] += dh_e[n] * dt * da_s[n] * h_prev[n];
                            db_t[n] += dh_e[n] * dt * ut;
                            sum_u += dh_e[n] * bt[n];
                            dh_e[n] *= da_s[n];
                        }
                        g.du[t * ne + j] = gss * d[e] + dt * sum_u;
                        g.ddelta[t * ne + j] = sum_delta;
                        g.dd[j] += gss * ut;
                        if let Some((_, dsilu)) = gate {
                            g.dz[t * ne + j] = gyt * (sum_y + d[e] * ut) * dsilu;
                        }
                    }
                }
            }
            g
        })
        .collect();

    let (ble, bln) = (batch * len * ne_all, batch * len * ns);
    let mut out = ScanGrads {
        du: vec![0f32; ble],
        ddelta: vec![0f32; ble],
        da: vec![0f32; ne_all * ns],
        db: vec![0f32; bln],
        dc: vec![0f32; bln],
        dd: vec![0f32; ne_all],
        dz: z.map(|_| vec![0f32; ble]),
        dh0: vec![0f32; batch * ne_all * ns],
    };
    for (&(bi, e0, ne), r) in tasks.iter().zip(&results) {
        for t in 0..len {
            let at = (bi * len + t) * ne_all + e0;
            out.du[at..][..ne].copy_from_slice(&r.du[t * ne..][..ne]);
            out.ddelta[at..][..ne].copy_from_slice(&r.ddelta[t * ne..][..ne]);
            if let Some(dz) = &mut out.dz {
                dz[at..][..ne].copy_from_slice(&r.dz[t * ne..][..ne]);
            }
        }
        add_into(&mut out.db[bi * len * ns..][..len * ns], &r.db);
        add_into(&mut out.dc[bi * len * ns..][..len * ns], &r.dc);
        add_into(&mut out.da[e0 * ns..][..ne * ns], &r.da);
        add_into(&mut out.dd[e0..][..ne], &r.dd);
        out.dh0[(bi * ne_all + e0) * ns..][..ne * ns].copy_from_slice(&r.dh0);
    }
    out
}

fn add_into(acc: &mut [f32], x: &[f32]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}
