//! Selective scan (Mamba-1's S6 recurrence), forward and backward; see `ops::scan` for the math.
//!
//! Shapes: u, delta, z, y, gy: [B, L, E]; a: [E, N]; b, c: [B, L, N]; d: [E]; h0, last, dh0:
//! [B, E, N]; saved: [B, nc, E, N] with nc = ceil(L / SCAN_CHUNK), saved[b, k] = the state before
//! step k * SCAN_CHUNK.
//!
//! Work is split into tasks of (batch, block of `BLOCK` channels) run with rayon. A task walks time
//! with its block's states held state-major, `[N, BLOCK]`, so the innermost loop runs over
//! channels: delta_t, u_t and a row of A^T are contiguous there, every per-channel sum (y, and
//! the backward's ddelta, du) is a plain per-lane accumulation, and the loop vectorises (with the
//! polynomial [`simd::exp`], AVX2 where the cpu has it). Only dB and dC sum across channels; they
//! use `LANES` interleaved partial sums. Nothing is allocated per step. Each task writes its own
//! slices, which are then scattered into the outputs; sums across tasks (dB, dC over channels; dA,
//! dD over the batch) add the tasks' partials in a fixed order, so results do not depend on
//! scheduling.

use rayon::prelude::*;

use super::simd::{self, Kernel};
use super::unary::sigmoid;
use crate::ops::{SCAN_CHUNK, ScanDims, ScanGrads};

/// Channels per task: enough work per task to amortise rayon, enough tasks to fill the cores.
const BLOCK: usize = 32;

/// Partial sums for the sums over channels (dB, dC): one AVX2 vector of f32.
const LANES: usize = 8;

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

/// A^T: [E, N] -> [N, E], so a task reads A[e0.., n] contiguously.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = x[r * cols + c];
        }
    }
    t
}

/// Copies a block's states from `[ne, N]` rows (the outputs' layout) into the task's `[N, ne]`.
fn load_state(src: &[f32], dst: &mut [f32], ne: usize, ns: usize) {
    for j in 0..ne {
        for n in 0..ns {
            dst[n * ne + j] = src[j * ns + n];
        }
    }
}

/// The reverse of [`load_state`].
fn store_state(src: &[f32], dst: &mut [f32], ne: usize, ns: usize) {
    for j in 0..ne {
        for n in 0..ns {
            dst[j * ns + n] = src[n * ne + j];
        }
    }
}

/// The inputs of one scan as the kernels read them (a transposed to [N, E]).
#[derive(Clone, Copy)]
struct Inputs<'a> {
    dims: ScanDims,
    u: &'a [f32],
    delta: &'a [f32],
    a_t: &'a [f32],
    b: &'a [f32],
    c: &'a [f32],
    d: &'a [f32],
    z: Option<&'a [f32]>,
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
    let a_t = transpose(a, ne_all, ns);
    let x = Inputs {
        dims,
        u,
        delta,
        a_t: &a_t,
        b,
        c,
        d,
        z,
    };
    let tasks = tasks(dims);
    let results: Vec<BlockForward> = tasks
        .par_iter()
        .map(|&(bi, e0, ne)| {
            simd::dispatch(ForwardTask {
                x,
                h0: h0.map(|h0| &h0[(bi * ne_all + e0) * ns..][..ne * ns]),
                save,
                bi,
                e0,
                ne,
            })
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

/// The forward of one (batch, channel block).
struct ForwardTask<'a> {
    x: Inputs<'a>,
    /// The block's initial states, [ne, N].
    h0: Option<&'a [f32]>,
    save: bool,
    bi: usize,
    e0: usize,
    ne: usize,
}

impl Kernel for ForwardTask<'_> {
    type Output = BlockForward;

    #[inline(always)]
    fn run(self) -> BlockForward {
        let Self {
            x,
            h0,
            save,
            bi,
            e0,
            ne,
        } = self;
        let ScanDims {
            len,
            chan: ne_all,
            state: ns,
            ..
        } = x.dims;
        let size = ne * ns;
        // h[n * ne + j]: the state n of channel e0 + j.
        let mut h = vec![0f32; size];
        if let Some(h0) = h0 {
            load_state(h0, &mut h, ne, ns);
        }
        let mut y = vec![0f32; len * ne];
        let mut saved = if save {
            vec![0f32; x.dims.n_chunks() * size]
        } else {
            Vec::new()
        };
        let mut acc = vec![0f32; ne];
        for t in 0..len {
            if save && t % SCAN_CHUNK == 0 {
                store_state(&h, &mut saved[(t / SCAN_CHUNK) * size..][..size], ne, ns);
            }
            let row = bi * len + t;
            let (bt, ct) = (&x.b[row * ns..][..ns], &x.c[row * ns..][..ns]);
            let dt = &x.delta[row * ne_all + e0..][..ne];
            let ut = &x.u[row * ne_all + e0..][..ne];
            acc.fill(0.0);
            for n in 0..ns {
                let (bn, cn) = (bt[n], ct[n]);
                let hn = &mut h[n * ne..][..ne];
                let an = &x.a_t[n * ne_all + e0..][..ne];
                for j in 0..ne {
                    hn[j] = simd::exp(dt[j] * an[j]) * hn[j] + dt[j] * bn * ut[j];
                    acc[j] += cn * hn[j];
                }
            }
            let yt = &mut y[t * ne..][..ne];
            let de = &x.d[e0..][..ne];
            for j in 0..ne {
                yt[j] = acc[j] + de[j] * ut[j];
            }
            if let Some(z) = x.z {
                let zt = &z[row * ne_all + e0..][..ne];
                for j in 0..ne {
                    yt[j] *= zt[j] * sigmoid(zt[j]);
                }
            }
        }
        let mut last = vec![0f32; size];
        store_state(&h, &mut last, ne, ns);
        BlockForward { y, last, saved }
    }
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
/// The states h_{t-1}, h_t of a chunk are recomputed from `saved` into a `[SCAN_CHUNK + 1, N, ne]`
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
    let a_t = transpose(a, ne_all, ns);
    let x = Inputs {
        dims,
        u,
        delta,
        a_t: &a_t,
        b,
        c,
        d,
        z,
    };
    let tasks = tasks(dims);
    let results: Vec<BlockGrads> = tasks
        .par_iter()
        .map(|&(bi, e0, ne)| {
            simd::dispatch(BackwardTask {
                x,
                saved,
                gy,
                bi,
                e0,
                ne,
            })
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

/// The backward of one (batch, channel block).
struct BackwardTask<'a> {
    x: Inputs<'a>,
    saved: &'a [f32],
    gy: &'a [f32],
    bi: usize,
    e0: usize,
    ne: usize,
}

impl Kernel for BackwardTask<'_> {
    type Output = BlockGrads;

    #[inline(always)]
    fn run(self) -> BlockGrads {
        let Self {
            x,
            saved,
            gy,
            bi,
            e0,
            ne,
        } = self;
        let ScanDims {
            len,
            chan: ne_all,
            state: ns,
            ..
        } = x.dims;
        let nc = x.dims.n_chunks();
        let size = ne * ns;
        let mut g = BlockGrads {
            du: vec![0f32; len * ne],
            ddelta: vec![0f32; len * ne],
            dz: if x.z.is_some() {
                vec![0f32; len * ne]
            } else {
                Vec::new()
            },
            db: vec![0f32; len * ns],
            dc: vec![0f32; len * ns],
            da: Vec::new(),
            dd: vec![0f32; ne],
            dh0: Vec::new(),
        };
        // All [N, ne]: dh, da; hs[s] = the state before step t0 + s; das[s] = exp(delta A) at t0 + s.
        let mut dh = vec![0f32; size];
        let mut da = vec![0f32; size];
        let mut hs = vec![0f32; (SCAN_CHUNK + 1) * size];
        let mut das = vec![0f32; SCAN_CHUNK * size];
        // Per step, per channel: g, silu'(z), and the sums over n.
        let (mut gss, mut dsilu) = (vec![0f32; ne], vec![0f32; ne]);
        let (mut sum_y, mut sum_delta, mut sum_u) =
            (vec![0f32; ne], vec![0f32; ne], vec![0f32; ne]);
        // Per state n of a step: the per-channel terms of dB_t[n] and dC_t[n].
        let (mut db_j, mut dc_j) = (vec![0f32; ne], vec![0f32; ne]);
        for k in (0..nc).rev() {
            let t0 = k * SCAN_CHUNK;
            let steps = SCAN_CHUNK.min(len - t0);
            load_state(
                &saved[((bi * nc + k) * ne_all + e0) * ns..][..size],
                &mut hs[..size],
                ne,
                ns,
            );
            for s in 0..steps {
                let row = bi * len + t0 + s;
                let bt = &x.b[row * ns..][..ns];
                let dt = &x.delta[row * ne_all + e0..][..ne];
                let ut = &x.u[row * ne_all + e0..][..ne];
                let (prev, next) = hs[s * size..(s + 2) * size].split_at_mut(size);
                let da_s = &mut das[s * size..][..size];
                for n in 0..ns {
                    let bn = bt[n];
                    let an = &x.a_t[n * ne_all + e0..][..ne];
                    let (da_n, prev_n) = (&mut da_s[n * ne..][..ne], &prev[n * ne..][..ne]);
                    let next_n = &mut next[n * ne..][..ne];
                    for j in 0..ne {
                        da_n[j] = simd::exp(dt[j] * an[j]);
                        next_n[j] = da_n[j] * prev_n[j] + dt[j] * bn * ut[j];
                    }
                }
            }
            for s in (0..steps).rev() {
                let t = t0 + s;
                let row = bi * len + t;
                let (bt, ct) = (&x.b[row * ns..][..ns], &x.c[row * ns..][..ns]);
                let i = row * ne_all + e0;
                let (dt, ut, gyt) = (&x.delta[i..][..ne], &x.u[i..][..ne], &gy[i..][..ne]);
                match x.z {
                    Some(z) => {
                        let zt = &z[i..][..ne];
                        for j in 0..ne {
                            let sg = sigmoid(zt[j]);
                            gss[j] = gyt[j] * (zt[j] * sg);
                            dsilu[j] = sg + zt[j] * sg * (1.0 - sg);
                        }
                    }
                    None => gss.copy_from_slice(gyt),
                }
                sum_y.fill(0.0);
                sum_delta.fill(0.0);
                sum_u.fill(0.0);
                let (db_t, dc_t) = (&mut g.db[t * ns..][..ns], &mut g.dc[t * ns..][..ns]);
                for n in 0..ns {
                    let (bn, cn) = (bt[n], ct[n]);
                    let an = &x.a_t[n * ne_all + e0..][..ne];
                    let h_prev = &hs[s * size + n * ne..][..ne];
                    let h_t = &hs[(s + 1) * size + n * ne..][..ne];
                    let da_s = &das[s * size + n * ne..][..ne];
                    let (dh_n, da_n) = (&mut dh[n * ne..][..ne], &mut da[n * ne..][..ne]);
                    reverse_state_row(
                        (bn, cn),
                        an,
                        h_prev,
                        h_t,
                        da_s,
                        dt,
                        ut,
                        &gss,
                        dh_n,
                        da_n,
                        &mut sum_y,
                        &mut sum_delta,
                        &mut sum_u,
                        &mut db_j,
                        &mut dc_j,
                    );
                    db_t[n] += lane_sum(&db_j);
                    dc_t[n] += lane_sum(&dc_j);
                }
                let de = &x.d[e0..][..ne];
                for j in 0..ne {
                    g.du[t * ne + j] = gss[j] * de[j] + dt[j] * sum_u[j];
                    g.ddelta[t * ne + j] = sum_delta[j];
                    g.dd[j] += gss[j] * ut[j];
                }
                if x.z.is_some() {
                    for j in 0..ne {
                        g.dz[t * ne + j] = gyt[j] * (sum_y[j] + de[j] * ut[j]) * dsilu[j];
                    }
                }
            }
        }
        g.da = vec![0f32; size];
        store_state(&da, &mut g.da, ne, ns);
        g.dh0 = vec![0f32; size];
        store_state(&dh, &mut g.dh0, ne, ns);
        g
    }
}

/// One state n of one reverse step, over the block's channels j (the slices' index): updates dh,
/// dA and the per-channel sums, and leaves the terms of dB_t[n] and dC_t[n] (sums over channels)
/// in `db_j`, `dc_j`. A function of its own so that its `&mut` slices are known not to alias, and
/// without sums across j, so that the loop vectorises.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn reverse_state_row(
    (bn, cn): (f32, f32),
    an: &[f32],
    h_prev: &[f32],
    h_t: &[f32],
    da_s: &[f32],
    dt: &[f32],
    ut: &[f32],
    gss: &[f32],
    dh_n: &mut [f32],
    da_n: &mut [f32],
    sum_y: &mut [f32],
    sum_delta: &mut [f32],
    sum_u: &mut [f32],
    db_j: &mut [f32],
    dc_j: &mut [f32],
) {
    let ne = dh_n.len();
    let (an, h_prev, h_t, da_s) = (&an[..ne], &h_prev[..ne], &h_t[..ne], &da_s[..ne]);
    let (dt, ut, gss, da_n) = (&dt[..ne], &ut[..ne], &gss[..ne], &mut da_n[..ne]);
    let (sum_y, sum_delta, sum_u) = (&mut sum_y[..ne], &mut sum_delta[..ne], &mut sum_u[..ne]);
    let (db_j, dc_j) = (&mut db_j[..ne], &mut dc_j[..ne]);
    for j in 0..ne {
        dh_n[j] += gss[j] * cn;
        dc_j[j] = gss[j] * h_t[j];
        sum_y[j] += cn * h_t[j];
        sum_delta[j] += dh_n[j] * (an[j] * da_s[j] * h_prev[j] + bn * ut[j]);
        da_n[j] += dh_n[j] * dt[j] * da_s[j] * h_prev[j];
        db_j[j] = dh_n[j] * dt[j] * ut[j];
        sum_u[j] += dh_n[j] * bn;
        dh_n[j] *= da_s[j];
    }
}

/// The sum of x in `LANES` interleaved partial sums (lane = index % LANES), so it vectorises.
#[inline(always)]
fn lane_sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    for (l, v) in tail.iter().enumerate() {
        acc[l] += v;
    }
    acc.iter().sum()
}
