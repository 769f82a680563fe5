//! selective_scan: the cpu kernel against a plain sequential reference written here (f64), the
//! wgpu kernel against the cpu one, the backward against finite differences, and bad input.

use crate::common::*;
use crsm::ops::{ScanOutput, selective_scan};
use crsm::{Device, Tensor};

/// (B, L, E, N): single step; odd sizes; exactly one chunk (64); one past a chunk; several chunks;
/// E and N that fill no workgroup evenly (and B = 3); then E past one backward workgroup (256 / N
/// channels each), so dB and dC are summed over several partials, the last one part-filled.
const SHAPES: &[[usize; 4]] = &[
    [1, 1, 1, 1],
    [2, 7, 5, 3],
    [1, 64, 4, 16],
    [2, 65, 3, 4],
    [1, 130, 8, 16],
    [3, 200, 17, 5],
    [2, 70, 40, 16],
    [1, 9, 60, 5],
    // More channels than one cpu task takes (64), with a ragged last group of 8.
    [2, 66, 137, 5],
];

/// The scan's inputs as host vectors, in realistic ranges: delta as after softplus (0.01..0.5),
/// A = -exp(uniform(-1, 1)) as from A_log.
struct Inputs {
    dims: [usize; 4],
    u: Vec<f32>,
    delta: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    d: Vec<f32>,
    z: Option<Vec<f32>>,
    h0: Option<Vec<f32>>,
}

impl Inputs {
    fn new(seed: u64, dims: [usize; 4], with_z: bool, with_h0: bool) -> Self {
        let [bs, l, e, n] = dims;
        Inputs {
            dims,
            u: rand_vec(seed, bs * l * e, -1.0, 1.0),
            delta: rand_vec(seed + 1, bs * l * e, 0.01, 0.5),
            a: rand_vec(seed + 2, e * n, -1.0, 1.0)
                .into_iter()
                .map(|v| -v.exp())
                .collect(),
            b: rand_vec(seed + 3, bs * l * n, -1.0, 1.0),
            c: rand_vec(seed + 4, bs * l * n, -1.0, 1.0),
            d: rand_vec(seed + 5, e, -1.0, 1.0),
            z: with_z.then(|| rand_vec(seed + 6, bs * l * e, -2.0, 2.0)),
            h0: with_h0.then(|| rand_vec(seed + 7, bs * e * n, -1.0, 1.0)),
        }
    }

    /// u, delta, a, b, c, d, then z and h0 when present: the op's inputs in its argument order.
    fn tensors(&self, device: &Device) -> Vec<Tensor> {
        let [bs, l, e, n] = self.dims;
        let t = |v: &Vec<f32>, s: &[usize]| Tensor::from_f32(v.clone(), s, device).unwrap();
        let mut out = vec![
            t(&self.u, &[bs, l, e]),
            t(&self.delta, &[bs, l, e]),
            t(&self.a, &[e, n]),
            t(&self.b, &[bs, l, n]),
            t(&self.c, &[bs, l, n]),
            t(&self.d, &[e]),
        ];
        out.extend(self.z.as_ref().map(|z| t(z, &[bs, l, e])));
        out.extend(self.h0.as_ref().map(|h| t(h, &[bs, e, n])));
        out
    }

    fn name(&self) -> String {
        format!(
            "scan {:?} z={} h0={}",
            self.dims,
            self.z.is_some(),
            self.h0.is_some()
        )
    }
}

/// Calls the op on tensors laid out as `Inputs::tensors` made them.
fn run(x: &Inputs, ts: &[Tensor]) -> ScanOutput {
    let z = x.z.as_ref().map(|_| &ts[6]);
    let h0 = x.h0.as_ref().map(|_| &ts[6 + x.z.is_some() as usize]);
    selective_scan(&ts[0], &ts[1], &ts[2], &ts[3], &ts[4], &ts[5], z, h0).unwrap()
}

// ---- the sequential reference (f64) ------------------------------------------------------------

fn silu(v: f64) -> f64 {
    v / (1.0 + (-v).exp())
}

/// mamba-ssm's selective_scan_ref, as loops: y [B, L, E] and every state, hs [B, L+1, E, N] with
/// hs[b, 0] = h0 (or 0) and hs[b, t+1] = h_t.
fn reference_forward(x: &Inputs) -> (Vec<f64>, Vec<f64>) {
    let [bs, l, e, n] = x.dims;
    let f = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let (u, dl, a, b, c, d) = (f(&x.u), f(&x.delta), f(&x.a), f(&x.b), f(&x.c), f(&x.d));
    let mut y = vec![0f64; bs * l * e];
    let mut hs = vec![0f64; bs * (l + 1) * e * n];
    for bi in 0..bs {
        for ei in 0..e {
            for ni in 0..n {
                hs[(bi * (l + 1) * e + ei) * n + ni] =
                    x.h0.as_ref()
                        .map_or(0.0, |h| h[(bi * e + ei) * n + ni] as f64);
            }
        }
        for t in 0..l {
            for ei in 0..e {
                let i = (bi * l + t) * e + ei;
                let mut acc = 0.0;
                for ni in 0..n {
                    let prev = hs[((bi * (l + 1) + t) * e + ei) * n + ni];
                    let bt = b[(bi * l + t) * n + ni];
                    let h = (dl[i] * a[ei * n + ni]).exp() * prev + dl[i] * bt * u[i];
                    hs[((bi * (l + 1) + t + 1) * e + ei) * n + ni] = h;
                    acc += c[(bi * l + t) * n + ni] * h;
                }
                y[i] = acc + d[ei] * u[i];
                if let Some(z) = &x.z {
                    y[i] *= silu(z[i] as f64);
                }
            }
        }
    }
    (y, hs)
}

struct RefGrads {
    du: Vec<f64>,
    ddelta: Vec<f64>,
    da: Vec<f64>,
    db: Vec<f64>,
    dc: Vec<f64>,
    dd: Vec<f64>,
    dz: Vec<f64>,
    dh0: Vec<f64>,
}

/// Reverse-mode of `reference_forward` by hand, with every state stored. With g = gy * silu(z):
/// dC_t += g h_t; dD += g u_t; dh_t += g C_t; then through h_t = exp(dt A) h_{t-1} + dt B_t u_t:
/// ddelta_t = sum_n dh_t (A exp(dt A) h_{t-1} + B_t u_t); dA += dh_t dt exp(dt A) h_{t-1};
/// dB_t += dh_t dt u_t; du_t = g D + sum_n dh_t dt B_t; dh_{t-1} = dh_t exp(dt A);
/// dz = gy * (C_t . h_t + D u_t) * silu'(z).
fn reference_backward(x: &Inputs, hs: &[f64], gy: &[f32]) -> RefGrads {
    let [bs, l, e, n] = x.dims;
    let f = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let (u, dl, a, b, c, d) = (f(&x.u), f(&x.delta), f(&x.a), f(&x.b), f(&x.c), f(&x.d));
    let mut g = RefGrads {
        du: vec![0.0; bs * l * e],
        ddelta: vec![0.0; bs * l * e],
        da: vec![0.0; e * n],
        db: vec![0.0; bs * l * n],
        dc: vec![0.0; bs * l * n],
        dd: vec![0.0; e],
        dz: vec![0.0; bs * l * e],
        dh0: vec![0.0; bs * e * n],
    };
    let h = |bi: usize, s: usize, ei: usize, ni: usize| hs[((bi * (l + 1) + s) * e + ei) * n + ni];
    for bi in 0..bs {
        for ei in 0..e {
            let mut dh = vec![0f64; n];
            for t in (0..l).rev() {
                let i = (bi * l + t) * e + ei;
                let mut gss = gy[i] as f64;
                if let Some(z) = &x.z {
                    let zt = z[i] as f64;
                    let s = 1.0 / (1.0 + (-zt).exp());
                    let yss: f64 = (0..n)
                        .map(|ni| c[(bi * l + t) * n + ni] * h(bi, t + 1, ei, ni))
                        .sum::<f64>()
                        + d[ei] * u[i];
                    g.dz[i] = gy[i] as f64 * yss * (s + zt * s * (1.0 - s));
                    gss *= silu(zt);
                }
                g.dd[ei] += gss * u[i];
                g.du[i] = gss * d[ei];
                for ni in 0..n {
                    let (bt, ct) = (b[(bi * l + t) * n + ni], c[(bi * l + t) * n + ni]);
                    let (h_t, h_prev) = (h(bi, t + 1, ei, ni), h(bi, t, ei, ni));
                    let decay = (dl[i] * a[ei * n + ni]).exp();
                    g.dc[(bi * l + t) * n + ni] += gss * h_t;
                    dh[ni] += gss * ct;
                    g.ddelta[i] += dh[ni] * (a[ei * n + ni] * decay * h_prev + bt * u[i]);
                    g.da[ei * n + ni] += dh[ni] * dl[i] * decay * h_prev;
                    g.db[(bi * l + t) * n + ni] += dh[ni] * dl[i] * u[i];
                    g.du[i] += dh[ni] * dl[i] * bt;
                    dh[ni] *= decay;
                }
            }
            g.dh0[(bi * e + ei) * n..][..n].copy_from_slice(&dh);
        }
    }
    g
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&v| v as f32).collect()
}

fn combos() -> impl Iterator<Item = (bool, bool)> {
    [(false, false), (true, false), (false, true), (true, true)].into_iter()
}

// ---- tests ---------------------------------------------------------------------------------------

#[test]
fn scan_cpu_matches_sequential_reference_forward_and_backward() {
    for (s, &dims) in SHAPES.iter().enumerate() {
        for (with_z, with_h0) in combos() {
            let x = Inputs::new(100 + 10 * s as u64, dims, with_z, with_h0);
            let what = x.name();
            let vars: Vec<Tensor> = x
                .tensors(&Device::Cpu)
                .iter()
                .map(|t| t.as_variable())
                .collect();
            let out = run(&x, &vars);
            let (y_ref, hs) = reference_forward(&x);
            // fp32 against f64 over up to 200 steps: measured at most 6e-6 (on dD, |dD| ~ 17).
            let (rtol, atol) = (2e-5, 1e-5);
            assert_close(
                &format!("{what}: y"),
                &out.y.to_vec_f32().unwrap(),
                &to_f32(&y_ref),
                rtol,
                atol,
            );
            let [bs, l, e, n] = dims;
            let last_ref: Vec<f64> = (0..bs)
                .flat_map(|bi| hs[(bi * (l + 1) + l) * e * n..][..e * n].to_vec())
                .collect();
            assert_close(
                &format!("{what}: last_state"),
                &out.last_state.to_vec_f32().unwrap(),
                &to_f32(&last_ref),
                rtol,
                atol,
            );

            let gy = rand_vec(7, bs * l * e, -1.0, 1.0);
            let grads = out
                .y
                .backward_with(&Tensor::from_f32(gy.clone(), &[bs, l, e], &Device::Cpu).unwrap())
                .unwrap();
            let r = reference_backward(&x, &hs, &gy);
            let mut want = vec![
                ("du", &r.du),
                ("ddelta", &r.ddelta),
                ("da", &r.da),
                ("db", &r.db),
                ("dc", &r.dc),
                ("dd", &r.dd),
            ];
            if with_z {
                want.push(("dz", &r.dz));
            }
            if with_h0 {
                want.push(("dh0", &r.dh0));
            }
            for (k, (name, reference)) in want.into_iter().enumerate() {
                let got = grads
                    .get(&vars[k])
                    .unwrap_or_else(|| panic!("{what}: no {name}"))
                    .to_vec_f32()
                    .unwrap();
                assert_close(
                    &format!("{what}: {name}"),
                    &got,
                    &to_f32(reference),
                    rtol,
                    atol,
                );
            }
        }
    }
}

#[test]
fn scan_wgpu_matches_cpu_forward_last_state_and_gradients() {
    let gpus = gpus();
    for (s, &dims) in SHAPES.iter().enumerate() {
        for (with_z, with_h0) in combos() {
            let x = Inputs::new(200 + 10 * s as u64, dims, with_z, with_h0);
            let what = x.name();
            // Same arithmetic in the same order per state; sums over channels are grouped
            // differently (workgroups, then partials) and exp differs by an ulp: measured at most
            // 9e-6 (on dA, |dA| ~ 8), against mamba-ssm's own rtol 6e-4 / atol 2e-3.
            check_parity(
                &what,
                &x.tensors(&Device::Cpu),
                |ts| run(&x, ts).y,
                1e-5,
                2e-5,
            );
            let cpu_last = run(&x, &x.tensors(&Device::Cpu)).last_state;
            for gpu in &gpus {
                let gpu_last = run(&x, &x.tensors(gpu)).last_state;
                assert_tensors_close(
                    &format!("{what}: last_state {} vs cpu", gpu.name()),
                    &gpu_last,
                    &cpu_last,
                    1e-5,
                    1e-6,
                );
            }
        }
    }
}

#[test]
fn scan_gradients_match_finite_differences() {
    for (seed, dims) in [(300, [1, 5, 3, 2]), (310, [2, 9, 2, 3])] {
        for (with_z, with_h0) in [(false, false), (true, true)] {
            let x = Inputs::new(seed, dims, with_z, with_h0);
            check_gradients(&x.name(), &x.tensors(&Device::Cpu), |ts| run(&x, ts).y);
        }
    }
}

#[test]
fn scan_last_state_is_detached_and_continues_the_scan() {
    // Scanning [0, 70) then [70, 130) from the carried state is scanning [0, 130) at once: the
    // prefill-then-continue contract of the recurrent path.
    let x = Inputs::new(400, [2, 130, 6, 4], true, true);
    let ts: Vec<Tensor> = x
        .tensors(&Device::Cpu)
        .iter()
        .map(|t| t.as_variable())
        .collect();
    let full = run(&x, &ts);
    assert!(full.y.requires_grad() && !full.last_state.requires_grad());
    let [bs, _, e, n] = x.dims;
    let split = |v: &[f32], width: usize, from: usize, to: usize| -> Vec<f32> {
        (0..bs)
            .flat_map(|bi| v[(bi * 130 + from) * width..(bi * 130 + to) * width].to_vec())
            .collect()
    };
    let part = |from: usize, to: usize, h0: Vec<f32>| Inputs {
        dims: [bs, to - from, e, n],
        u: split(&x.u, e, from, to),
        delta: split(&x.delta, e, from, to),
        a: x.a.clone(),
        b: split(&x.b, n, from, to),
        c: split(&x.c, n, from, to),
        d: x.d.clone(),
        z: x.z.as_ref().map(|z| split(z, e, from, to)),
        h0: Some(h0),
    };
    let first = part(0, 70, x.h0.clone().unwrap());
    let out1 = run(&first, &first.tensors(&Device::Cpu));
    let second = part(70, 130, out1.last_state.to_vec_f32().unwrap());
    let out2 = run(&second, &second.tensors(&Device::Cpu));
    assert_close(
        "last state after two halves",
        &out2.last_state.to_vec_f32().unwrap(),
        &full.last_state.to_vec_f32().unwrap(),
        1e-5,
        1e-6,
    );
    let full_y = full.y.to_vec_f32().unwrap();
    assert_close(
        "y of the second half",
        &out2.y.to_vec_f32().unwrap(),
        &split(&full_y, e, 70, 130),
        1e-5,
        1e-6,
    );
}

#[test]
fn scan_of_length_one_with_h0_is_one_recurrent_step() {
    // B = 1, L = 1, E = 2, N = 2, no gate: h = exp(dt A) h0 + dt B u; y = C . h + D u, by hand.
    let (u, dt, a, b, c, d, h0) = (
        [0.5f32, -1.0],
        [0.1f32, 0.3],
        [-1.0f32, -2.0, -0.5, -4.0],
        [0.2f32, -0.7],
        [1.5f32, 0.25],
        [0.3f32, -0.6],
        [1.0f32, -2.0, 0.5, 3.0],
    );
    let mut h = [0f32; 4];
    let mut y = [0f32; 2];
    for e in 0..2 {
        for n in 0..2 {
            h[e * 2 + n] = (dt[e] * a[e * 2 + n]).exp() * h0[e * 2 + n] + dt[e] * b[n] * u[e];
            y[e] += c[n] * h[e * 2 + n];
        }
        y[e] += d[e] * u[e];
    }
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for dev in devices {
        let t = |v: &[f32], s: &[usize]| Tensor::from_f32(v.to_vec(), s, &dev).unwrap();
        let out = selective_scan(
            &t(&u, &[1, 1, 2]),
            &t(&dt, &[1, 1, 2]),
            &t(&a, &[2, 2]),
            &t(&b, &[1, 1, 2]),
            &t(&c, &[1, 1, 2]),
            &t(&d, &[2]),
            None,
            Some(&t(&h0, &[1, 2, 2])),
        )
        .unwrap();
        assert_close(
            &format!("one step on {}: y", dev.name()),
            &out.y.to_vec_f32().unwrap(),
            &y,
            1e-6,
            1e-6,
        );
        assert_close(
            &format!("one step on {}: last", dev.name()),
            &out.last_state.to_vec_f32().unwrap(),
            &h,
            1e-6,
            1e-6,
        );
    }
}

#[test]
fn scan_rejects_mismatched_shapes_naming_op_and_shapes() {
    let cpu = Device::Cpu;
    let z = |s: &[usize]| Tensor::zeros(s, &cpu).unwrap();
    let (u, delta, a, b, c, d) = (
        z(&[2, 5, 3]),
        z(&[2, 5, 3]),
        z(&[3, 4]),
        z(&[2, 5, 4]),
        z(&[2, 5, 4]),
        z(&[3]),
    );
    let err = |r: crsm::Result<ScanOutput>| r.err().expect("expected an error").to_string();

    let e = err(selective_scan(
        &u,
        &delta,
        &a,
        &z(&[2, 5, 7]),
        &c,
        &d,
        None,
        None,
    ));
    assert!(
        e.contains("selective_scan")
            && e.contains("[2, 5, 7]")
            && e.contains("[2, 5, 4]")
            && e.contains("b"),
        "{e}"
    );

    let e = err(selective_scan(
        &u,
        &z(&[2, 6, 3]),
        &a,
        &b,
        &c,
        &d,
        None,
        None,
    ));
    assert!(
        e.contains("selective_scan")
            && e.contains("delta")
            && e.contains("[2, 6, 3]")
            && e.contains("[2, 5, 3]"),
        "{e}"
    );

    let e = err(selective_scan(
        &u,
        &delta,
        &z(&[3, 300]),
        &z(&[2, 5, 300]),
        &z(&[2, 5, 300]),
        &d,
        None,
        None,
    ));
    assert!(
        e.contains("selective_scan") && e.contains("300") && e.contains("256"),
        "{e}"
    );

    let e = err(selective_scan(
        &u,
        &delta,
        &a,
        &b,
        &c,
        &d,
        None,
        Some(&z(&[2, 4, 3])),
    ));
    assert!(
        e.contains("selective_scan")
            && e.contains("h0")
            && e.contains("[2, 4, 3]")
            && e.contains("[2, 3, 4]"),
        "{e}"
    );

    let e = err(selective_scan(
        &u,
        &delta,
        &z(&[4, 4]),
        &b,
        &c,
        &d,
        None,
        None,
    ));
    assert!(
        e.contains("selective_scan") && e.contains("[4, 4]") && e.contains("[3, 4]"),
        "{e}"
    );

    let e = err(selective_scan(
        &z(&[5, 3]),
        &delta,
        &a,
        &b,
        &c,
        &d,
        None,
        None,
    ));
    assert!(e.contains("selective_scan") && e.contains("[5, 3]"), "{e}");
}
