//! Selective scan (Mamba-1's S6 recurrence), forward and backward; see `ops::scan` for the math.
//!
//! Shapes: u, delta, z, y, gy: [B, L, E]; a: [E, N]; b, c: [B, L, N]; d: [E]; h0, last, dh0:
//! [B, E, N]; saved: [B, nc, E, N] with nc = ceil(L / SCAN_CHUNK), saved[b, k] = the state before
//! step k * SCAN_CHUNK.
//!
//! Work is split into tasks of (batch, block of `BLOCK` channels) run with rayon. Inside a task,
//! channels go in groups of `LANES` (one AVX2 vector): a group's N states are `[f32; LANES]` values
//! that stay in registers and L1 while the group walks all of time, so the innermost loops are
//! fixed-width lane loops LLVM turns into straight vector code (with the polynomial
//! [`simd::pow2`] for the decays, AVX2 + FMA where the cpu has it), with no loop overhead or
//! bounds checks per state. A ragged last group is padded with zero lanes (delta = u = 0 keeps their states at zero)
//! that are never stored. dB and dC, sums over channels, are accumulated per lane over the task's
//! groups and reduced once at the end. Each task writes its own slices, which are then scattered
//! into the outputs; sums across tasks (dB, dC over channels; dA, dD over the batch) add the
//! tasks' partials in a fixed order, so results do not depend on scheduling.

use rayon::prelude::*;

use super::binary::add_assign;
use super::shape;
use super::simd::{self, Kernel};
use super::unary::sigmoid;
use crate::backend::params::{SCAN_CHUNK, ScanDims, ScanForward, ScanGrads};

/// Channels per task: enough work per task to amortise rayon, enough tasks to fill the cores.
const BLOCK: usize = 64;

/// Channels per group: one AVX2 vector of f32.
const LANES: usize = 8;

/// One value per channel of a group.
type Lanes = [f32; LANES];

const ZERO: Lanes = [0.0; LANES];

/// `[f(0), .., f(7)]` as straight-line code. LLVM does not vectorise loops of 8 iterations (too
/// few to pay for its alias checks), but its SLP pass turns eight copies of the same expression
/// tree over consecutive lanes into vector instructions.
#[inline(always)]
fn lanes(f: impl Fn(usize) -> f32) -> Lanes {
    [f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7)]
}

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

/// `w` contiguous values from `x` into lanes, the rest zero. The full case is a plain 32-byte load
/// (written so LLVM cannot merge both cases into one `memcpy` call of variable length).
#[inline(always)]
fn load(x: &[f32], w: usize) -> Lanes {
    if w == LANES {
        lanes(|l| x[l])
    } else {
        let mut v = ZERO;
        for (vl, xl) in v.iter_mut().zip(&x[..w]) {
            *vl = *xl;
        }
        v
    }
}

/// The first `w` lanes of `v` into `x`.
#[inline(always)]
fn store(v: &Lanes, x: &mut [f32], w: usize) {
    if let Some(full) = x.first_chunk_mut::<LANES>().filter(|_| w == LANES) {
        *full = *v;
    } else {
        for (xl, vl) in x[..w].iter_mut().zip(v) {
            *xl = *vl;
        }
    }
}

/// Rows `[w, N]` of a row-major `[.., N]` array (one row per channel) into N lane values.
#[inline(always)]
fn load_rows(x: &[f32], w: usize, ns: usize, out: &mut [Lanes]) {
    for (n, o) in out.iter_mut().enumerate() {
        *o = ZERO;
        for l in 0..w {
            o[l] = x[l * ns + n];
        }
    }
}

/// The reverse of [`load_rows`]: N lane values into rows `[w, N]`.
#[inline(always)]
fn store_rows(v: &[Lanes], w: usize, ns: usize, x: &mut [f32]) {
    for (n, vn) in v.iter().enumerate() {
        for l in 0..w {
            x[l * ns + n] = vn[l];
        }
    }
}

/// Multiplies every lane by `k` (A by log2 e, for [`simd::pow2`]).
#[inline(always)]
fn scale_lanes(v: &mut [Lanes], k: f32) {
    for x in v.as_flattened_mut() {
        *x *= k;
    }
}

/// The inputs of one scan as the kernels read them.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    dims: ScanDims,
    u: &'a [f32],
    delta: &'a [f32],
    a: &'a [f32],
    b: &'a [f32],
    c: &'a [f32],
    d: &'a [f32],
    z: Option<&'a [f32]>,
}

// ---- forward -------------------------------------------------------------------------------------

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
) -> ScanForward<Vec<f32>> {
    let ScanDims {
        batch,
        len,
        chan: ne_all,
        state: ns,
    } = dims;
    let nc = dims.n_chunks();
    let x = Inputs {
        dims,
        u,
        delta,
        a,
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

    let output = |n, size, part: &(dyn Fn(&BlockForward, usize) -> &[f32] + Sync)| {
        gather(&results, batch, n, ne_all * size, BLOCK * size, part)
    };
    let width = |r: &BlockForward| r.last.len() / ns;
    ScanForward {
        y: output(len, 1, &|r, t| step(&r.y, t, width(r))),
        last: output(1, ns, &|r, _| &r.last),
        saved: save.then(|| output(nc, ns, &|r, k| &r.saved[k * r.last.len()..][..r.last.len()])),
    }
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
        let nc = x.dims.n_chunks();
        let mut out = BlockForward {
            y: vec![0f32; len * ne],
            last: vec![0f32; ne * ns],
            saved: if save {
                vec![0f32; nc * ne * ns]
            } else {
                Vec::new()
            },
        };
        // A group's states h[n] and A[., n], one lane per channel.
        let mut h = vec![ZERO; ns];
        let mut a = vec![ZERO; ns];
        for g0 in (0..ne).step_by(LANES) {
            let w = LANES.min(ne - g0);
            let e = e0 + g0;
            load_rows(&x.a[e * ns..], w, ns, &mut a);
            scale_lanes(&mut a, std::f32::consts::LOG2_E);
            match h0 {
                Some(h0) => load_rows(&h0[g0 * ns..], w, ns, &mut h),
                None => h.fill(ZERO),
            }
            let dg = load(&x.d[e..], w);
            for t in 0..len {
                if save && t % SCAN_CHUNK == 0 {
                    let at = (t / SCAN_CHUNK * ne + g0) * ns;
                    store_rows(&h, w, ns, &mut out.saved[at..]);
                }
                let row = bi * len + t;
                let (bt, ct) = (&x.b[row * ns..][..ns], &x.c[row * ns..][..ns]);
                let i = row * ne_all + e;
                let (dt, ut) = (load(&x.delta[i..], w), load(&x.u[i..], w));
                let du = lanes(|l| dt[l] * ut[l]);
                let mut acc = lanes(|l| dg[l] * ut[l]);
                for (((hn, an), &bn), &cn) in h.iter_mut().zip(&a).zip(bt).zip(ct) {
                    let hv = *hn;
                    *hn = lanes(|l| simd::pow2(dt[l] * an[l]).mul_add(hv[l], du[l] * bn));
                    let (hv, av) = (*hn, acc);
                    acc = lanes(|l| cn.mul_add(hv[l], av[l]));
                }
                if let Some(z) = x.z {
                    let zt = load(&z[i..], w);
                    let av = acc;
                    acc = lanes(|l| av[l] * (zt[l] * sigmoid(zt[l])));
                }
                store(&acc, &mut out.y[t * ne + g0..], w);
            }
            store_rows(&h, w, ns, &mut out.last[g0 * ns..]);
        }
        out
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
/// The states h_{t-1}, h_t of a chunk are recomputed from `saved` into a `[SCAN_CHUNK + 1, N]`
/// buffer of lane values, together with exp(delta A), before the chunk is walked backwards, with
/// the forward's exact arithmetic (same operation order and fused multiply-adds), so they are the
/// forward's states bit for bit. Sums use `mul_add`: LLVM never fuses a multiply and an add itself.
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
    let x = Inputs {
        dims,
        u,
        delta,
        a,
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

    // Per-channel outputs from the tasks' blocks; the sums over tasks in task order.
    let bln = batch * len * ns;
    let output = |n, size, part: &(dyn Fn(&BlockGrads, usize) -> &[f32] + Sync)| {
        gather(&results, batch, n, ne_all * size, BLOCK * size, part)
    };
    let mut out = ScanGrads {
        du: output(len, 1, &|r, t| step(&r.du, t, r.dd.len())),
        ddelta: output(len, 1, &|r, t| step(&r.ddelta, t, r.dd.len())),
        dz: z.map(|_| output(len, 1, &|r, t| step(&r.dz, t, r.dd.len()))),
        dh0: output(1, ns, &|r, _| &r.dh0),
        da: vec![0f32; ne_all * ns],
        db: vec![0f32; bln],
        dc: vec![0f32; bln],
        dd: vec![0f32; ne_all],
    };
    for (&(bi, e0, ne), r) in tasks.iter().zip(&results) {
        add_assign(&mut out.db[bi * len * ns..][..len * ns], &r.db);
        add_assign(&mut out.dc[bi * len * ns..][..len * ns], &r.dc);
        add_assign(&mut out.da[e0 * ns..][..ne * ns], &r.da);
        add_assign(&mut out.dd[e0..][..ne], &r.dd);
    }
    out
}

/// An output of `batch * n` rows of `width` values from the tasks' results (ordered by batch, then
/// channel block): row r holds `part(block, r % n)` of each block of its batch side by side, the
/// block at `blk` starting at `blk * stride`. Rows are written once each, in parallel.
fn gather<R: Sync>(
    results: &[R],
    batch: usize,
    n: usize,
    width: usize,
    stride: usize,
    part: &(dyn Fn(&R, usize) -> &[f32] + Sync),
) -> Vec<f32> {
    let blocks = results.len() / batch;
    shape::rows(batch * n, width, |row, o| {
        for (blk, r) in results[row / n * blocks..][..blocks].iter().enumerate() {
            let src = part(r, row % n);
            o[blk * stride..][..src.len()].write_copy_of_slice(src);
        }
    })
}

/// Step t of a block's [L, ne] array.
fn step(x: &[f32], t: usize, ne: usize) -> &[f32] {
    &x[t * ne..][..ne]
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
        let with_z = x.z.is_some();
        let mut g = BlockGrads {
            du: vec![0f32; len * ne],
            ddelta: vec![0f32; len * ne],
            dz: if with_z {
                vec![0f32; len * ne]
            } else {
                Vec::new()
            },
            db: vec![0f32; len * ns],
            dc: vec![0f32; len * ns],
            da: vec![0f32; ne * ns],
            dd: vec![0f32; ne],
            dh0: vec![0f32; ne * ns],
        };
        // dB_t[n], dC_t[n] per lane, summed over the task's groups: [L, N].
        let mut db = vec![ZERO; len * ns];
        let mut dc = vec![ZERO; len * ns];
        // Per group, one lane per channel: dh[n], dA[n], A[., n]; hs[s * N + n] = the state before
        // step t0 + s; das[s * N + n] = exp(delta A) at step t0 + s.
        let mut dh = vec![ZERO; ns];
        let mut da = vec![ZERO; ns];
        let mut a = vec![ZERO; ns];
        let mut hs = vec![ZERO; (SCAN_CHUNK + 1) * ns];
        let mut das = vec![ZERO; SCAN_CHUNK * ns];
        for g0 in (0..ne).step_by(LANES) {
            let w = LANES.min(ne - g0);
            let e = e0 + g0;
            load_rows(&x.a[e * ns..], w, ns, &mut a);
            scale_lanes(&mut a, std::f32::consts::LOG2_E);
            dh.fill(ZERO);
            da.fill(ZERO);
            let dg = load(&x.d[e..], w);
            let mut dd = ZERO;
            for k in (0..nc).rev() {
                let t0 = k * SCAN_CHUNK;
                let steps = SCAN_CHUNK.min(len - t0);
                let at = ((bi * nc + k) * ne_all + e) * ns;
                load_rows(&saved[at..], w, ns, &mut hs[..ns]);
                for s in 0..steps {
                    let row = bi * len + t0 + s;
                    let bt = &x.b[row * ns..][..ns];
                    let i = row * ne_all + e;
                    let (dt, ut) = (load(&x.delta[i..], w), load(&x.u[i..], w));
                    let (prev, next) = hs[s * ns..(s + 2) * ns].split_at_mut(ns);
                    let da_s = &mut das[s * ns..][..ns];
                    for ((((dan, pn), nn), an), &bn) in
                        da_s.iter_mut().zip(&*prev).zip(next).zip(&a).zip(bt)
                    {
                        *dan = lanes(|l| simd::pow2(dt[l] * an[l]));
                        let e = *dan;
                        *nn = lanes(|l| e[l].mul_add(pn[l], dt[l] * ut[l] * bn));
                    }
                }
                for s in (0..steps).rev() {
                    let t = t0 + s;
                    let row = bi * len + t;
                    let (bt, ct) = (&x.b[row * ns..][..ns], &x.c[row * ns..][..ns]);
                    let i = row * ne_all + e;
                    let (dt, ut, gyt) = (
                        load(&x.delta[i..], w),
                        load(&x.u[i..], w),
                        load(&gy[i..], w),
                    );
                    // gs = the gradient reaching the sum (after the gate); dsilu = silu'(z).
                    let (mut gs, mut dsilu) = (gyt, ZERO);
                    if let Some(z) = x.z {
                        let zt = load(&z[i..], w);
                        let sg = lanes(|l| sigmoid(zt[l]));
                        gs = lanes(|l| gyt[l] * (zt[l] * sg[l]));
                        dsilu = lanes(|l| sg[l] + zt[l] * sg[l] * (1.0 - sg[l]));
                    }
                    let (mut sum_y, mut sum_delta, mut sum_u) = (ZERO, ZERO, ZERO);
                    let h_prev = &hs[s * ns..][..ns];
                    let h_t = &hs[(s + 1) * ns..][..ns];
                    let da_s = &das[s * ns..][..ns];
                    let (db_t, dc_t) = (&mut db[t * ns..][..ns], &mut dc[t * ns..][..ns]);
                    let dtu = lanes(|l| dt[l] * ut[l]);
                    for n in 0..ns {
                        let (bn, cn, an) = (bt[n], ct[n], &a[n]);
                        let (hp, ht, dan) = (&h_prev[n], &h_t[n], &da_s[n]);
                        let (dhn, dan_acc) = (&mut dh[n], &mut da[n]);
                        let (dbn, dcn) = (&mut db_t[n], &mut dc_t[n]);
                        let dhv = lanes(|l| gs[l].mul_add(cn, dhn[l]));
                        *dcn = lanes(|l| gs[l].mul_add(ht[l], dcn[l]));
                        sum_y = lanes(|l| cn.mul_add(ht[l], sum_y[l]));
                        // The gradient of h_{t-1}, and x = dh_t exp(delta A) h_{t-1}, shared by
                        // dA (x delta) and ddelta (A x, plus B u dh_t summed in `sum_u` below).
                        *dhn = lanes(|l| dhv[l] * dan[l]);
                        let x = lanes(|l| dhn[l] * hp[l]);
                        sum_delta = lanes(|l| an[l].mul_add(x[l], sum_delta[l]));
                        *dan_acc = lanes(|l| x[l].mul_add(dt[l], dan_acc[l]));
                        *dbn = lanes(|l| dhv[l].mul_add(dtu[l], dbn[l]));
                        sum_u = lanes(|l| dhv[l].mul_add(bn, sum_u[l]));
                    }
                    let sum_delta =
                        lanes(|l| ut[l].mul_add(sum_u[l], std::f32::consts::LN_2 * sum_delta[l]));
                    let du = lanes(|l| gs[l] * dg[l] + dt[l] * sum_u[l]);
                    dd = lanes(|l| dd[l] + gs[l] * ut[l]);
                    let dz = lanes(|l| gyt[l] * (sum_y[l] + dg[l] * ut[l]) * dsilu[l]);
                    store(&du, &mut g.du[t * ne + g0..], w);
                    store(&sum_delta, &mut g.ddelta[t * ne + g0..], w);
                    if with_z {
                        store(&dz, &mut g.dz[t * ne + g0..], w);
                    }
                }
            }
            store_rows(&da, w, ns, &mut g.da[g0 * ns..]);
            store_rows(&dh, w, ns, &mut g.dh0[g0 * ns..]);
            store(&dd, &mut g.dd[g0..], w);
        }
        for (dst, src) in g.db.iter_mut().zip(&db) {
            *dst = lane_sum(src);
        }
        for (dst, src) in g.dc.iter_mut().zip(&dc) {
            *dst = lane_sum(src);
        }
        g
    }
}

/// The sum of one lane value's lanes, pairwise (the order a vector reduction takes).
#[inline(always)]
fn lane_sum(v: &Lanes) -> f32 {
    let [a, b, c, d, e, f, g, h] = *v;
    ((a + e) + (c + g)) + ((b + f) + (d + h))
}
