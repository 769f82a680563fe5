//! The planner's rollout ops (top_k, topk_log_softmax, sample_logits, certainty): hand-worked rows,
//! the cpu against lavapipe on random logits up to mamba-130m's vocabulary (V = 50280) and odd
//! sizes, sampling frequencies against softmax, the chunked launches, and the errors.

use std::sync::Arc;

use crate::common::*;
use crsm::backend::{BindingLimits, WgpuContext};
use crsm::rng::{counter_gumbel, uniform_of_bits};
use crsm::{Device, Tensor, ops};

/// (B, V, k): one entry; odd sizes; V below and above the 256-wide workgroup; a vocabulary.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 7, 3),
    (2, 255, 64),
    (5, 1000, 17),
    (4, 4099, 64),
    (3, 50_280, 8),
    (2, 50_280, 64),
];

fn logits(seed: u64, b: usize, v: usize, device: &Device) -> Tensor {
    rand_tensor(seed, &[b, v], -8.0, 8.0, device)
}

/// Logits in steps of 0.5 over a small range: many exact ties, so the order's tie-break (lower
/// index first) decides most of the top k.
fn tied_logits(seed: u64, b: usize, v: usize) -> Tensor {
    let x: Vec<f32> = rand_vec(seed, b * v, 0.0, 6.0)
        .into_iter()
        .map(|x| (x * 2.0).floor() / 2.0)
        .collect();
    Tensor::from_f32(x, &[b, v], &Device::Cpu).unwrap()
}

fn u32s(t: &Tensor) -> Vec<u32> {
    t.to_vec_u32().unwrap()
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().unwrap()
}

// ---- top_k ---------------------------------------------------------------------------------------

#[test]
fn top_k_of_a_hand_worked_row() {
    // Row 0: 5 at 4, then the tie 3 = 3 at 1 and 2 (lower index first). Row 1: all equal, so the
    // first three indices.
    let x = Tensor::from_f32(
        vec![1.0, 3.0, 3.0, -2.0, 5.0, 0.5, 0.5, 0.5, 0.5, 0.5],
        &[2, 5],
        &Device::Cpu,
    )
    .unwrap();
    let check = |x: &Tensor, what: &str| {
        let (values, indices) = ops::top_k(x, 3).unwrap();
        assert_eq!(values.shape(), &[2, 3], "{what}");
        assert_eq!(f32s(&values), [5.0, 3.0, 3.0, 0.5, 0.5, 0.5], "{what}");
        assert_eq!(u32s(&indices), [4, 1, 2, 0, 1, 2], "{what}");
        // log p_j = x_j - ln sum exp(x): row 1 is uniform, ln(1/5) each.
        let (lp, indices) = ops::topk_log_softmax(x, 3).unwrap();
        assert_eq!(u32s(&indices), [4, 1, 2, 0, 1, 2], "{what}");
        let lse = [1f64, 3.0, 3.0, -2.0, 5.0]
            .iter()
            .map(|v| v.exp())
            .sum::<f64>()
            .ln();
        let want: Vec<f32> = [5.0 - lse, 3.0 - lse, 3.0 - lse]
            .into_iter()
            .map(|v| v as f32)
            .chain([(0.2f64).ln() as f32; 3])
            .collect();
        assert_close(what, &f32s(&lp), &want, 1e-6, 1e-6);
    };
    check(&x, "top_k cpu");
    for gpu in gpus() {
        check(&x.to_device(&gpu).unwrap(), "top_k wgpu");
    }
}

#[test]
fn top_k_matches_cpu_exactly_on_random_and_tied_logits() {
    for gpu in gpus() {
        for (s, &(b, v, k)) in SHAPES.iter().enumerate() {
            for (kind, x) in [
                ("random", logits(100 + s as u64, b, v, &Device::Cpu)),
                ("tied", tied_logits(200 + s as u64, b, v)),
            ] {
                let what = format!("top_k {kind} B={b} V={v} k={k}");
                let (cv, ci) = ops::top_k(&x, k).unwrap();
                let (gv, gi) = ops::top_k(&x.to_device(&gpu).unwrap(), k).unwrap();
                assert_eq!(u32s(&gi), u32s(&ci), "{what}: indices");
                assert_eq!(f32s(&gv), f32s(&cv), "{what}: values");
                // The values are the logits at the indices, in descending order.
                let host = f32s(&x);
                let (cv, ci) = (f32s(&cv), u32s(&ci));
                for r in 0..b {
                    for j in 0..k {
                        assert_eq!(
                            cv[r * k + j],
                            host[r * v + ci[r * k + j] as usize],
                            "{what}"
                        );
                        if j > 0 {
                            assert!(cv[r * k + j - 1] >= cv[r * k + j], "{what}: row {r} order");
                        }
                    }
                }
                let (cl, cli) = ops::topk_log_softmax(&x, k).unwrap();
                let (gl, gli) = ops::topk_log_softmax(&x.to_device(&gpu).unwrap(), k).unwrap();
                assert_eq!(u32s(&gli), u32s(&cli), "{what}: log-softmax indices");
                assert_eq!(u32s(&cli), ci, "{what}: the same indices as top_k");
                // f32 sums of up to 50280 terms on the device against f64 on the cpu.
                assert_close(&what, &f32s(&gl), &f32s(&cl), 1e-5, 2e-5);
            }
        }
    }
}

#[test]
fn topk_log_softmax_matches_log_softmax_at_the_top_k() {
    let x = logits(300, 3, 1000, &Device::Cpu);
    let (lp, idx) = ops::topk_log_softmax(&x, 10).unwrap();
    let full = f32s(&ops::log_softmax(&x).unwrap());
    let want: Vec<f32> = u32s(&idx)
        .iter()
        .enumerate()
        .map(|(i, &j)| full[(i / 10) * 1000 + j as usize])
        .collect();
    assert_close(
        "topk_log_softmax vs log_softmax",
        &f32s(&lp),
        &want,
        1e-6,
        1e-6,
    );
}

// ---- sample_logits -------------------------------------------------------------------------------

/// The score the cpu twin gives entry j of row b: logit * (1 / T) + gumbel.
fn score(x: &[f32], n: usize, b: usize, j: usize, t: f32, seed: u32, counter: u32) -> f32 {
    let g = counter_gumbel(
        seed,
        b as u32,
        counter.wrapping_mul(n as u32).wrapping_add(j as u32),
    );
    x[b * n + j] * (1.0 / t) + g
}

#[test]
fn sample_logits_at_temperature_zero_is_the_argmax_with_ties_to_the_lower_index() {
    let x = Tensor::from_f32(
        vec![0.0, 2.0, -1.0, 2.0, 1.0, 7.0, 7.0, 7.0],
        &[2, 4],
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(u32s(&ops::sample_logits(&x, 0.0, 1, 0, 0).unwrap()), [1, 1]);
    let wide = tied_logits(400, 6, 50_280);
    let host = f32s(&wide);
    let want: Vec<u32> = host
        .chunks(50_280)
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            row.iter().position(|&v| v == max).unwrap() as u32
        })
        .collect();
    assert_eq!(
        u32s(&ops::sample_logits(&wide, 0.0, 9, 3, 5).unwrap()),
        want
    );
    for gpu in gpus() {
        let d = |t: &Tensor| t.to_device(&gpu).unwrap();
        assert_eq!(
            u32s(&ops::sample_logits(&d(&x), 0.0, 1, 0, 0).unwrap()),
            [1, 1]
        );
        assert_eq!(
            u32s(&ops::sample_logits(&d(&wide), 0.0, 9, 3, 5).unwrap()),
            want
        );
    }
}

/// Sampling on lavapipe picks the cpu's index in every row. The Gumbel draw is computed in the
/// same correctly rounded operations on both (`rng::portable_ln`, not `ln`/`log`), so the scores
/// agree bit for bit unless a driver fuses `logit * inv_t + g` into one fma (Vulkan allows it);
/// that moves a score by at most an ulp, so a disagreement is accepted only where the two picks'
/// cpu scores are within 4 ulp, and such rows must stay rare (they are counted and printed).
#[test]
fn sample_logits_matches_cpu_in_every_row_over_many_seeds() {
    for gpu in gpus() {
        let (mut rows, mut near_ties) = (0usize, 0usize);
        let cases: &[(usize, usize, f32)] = &[
            (64, 7, 1.0),
            (32, 255, 0.7),
            (16, 1000, 1.0),
            (8, 4099, 2.5),
            (3, 50_280, 1.0),
        ];
        for (c, &(b, n, t)) in cases.iter().enumerate() {
            let x = logits(500 + c as u64, b, n, &Device::Cpu);
            let host = f32s(&x);
            let on_gpu = x.to_device(&gpu).unwrap();
            for seed in 0..32u32 {
                let counter = seed * 7 + c as u32;
                let want = u32s(&ops::sample_logits(&x, t, seed, 0, counter).unwrap());
                let got = u32s(&ops::sample_logits(&on_gpu, t, seed, 0, counter).unwrap());
                for (r, (&w, &g)) in want.iter().zip(&got).enumerate() {
                    rows += 1;
                    if w == g {
                        continue;
                    }
                    let sw = score(&host, n, r, w as usize, t, seed, counter);
                    let sg = score(&host, n, r, g as usize, t, seed, counter);
                    let ulp = f32::EPSILON * sw.abs().max(sg.abs()).max(1.0);
                    assert!(
                        (sw - sg).abs() <= 4.0 * ulp,
                        "B={b} n={n} T={t} seed {seed} row {r}: cpu {w} (score {sw}) vs wgpu {g} (score {sg})"
                    );
                    near_ties += 1;
                }
            }
        }
        eprintln!("sample_logits: {near_ties} near-tie disagreements in {rows} rows");
        assert!(
            near_ties * 1000 <= rows,
            "{near_ties} of {rows} rows disagree"
        );
    }
}

#[test]
fn sample_logits_draws_match_softmax_frequencies() {
    // 2000 rows of the same logits, each its own stream, over 20 counters: 40,000 draws. Each
    // frequency's standard error is sqrt(p (1 - p) / 40000) <= 0.0025; allow 5 of them.
    let (rows, counters) = (2000usize, 20u32);
    let base = [0.0f32, 1.0, 2.0, -1.0, 0.5];
    let x = Tensor::from_f32(base.repeat(rows), &[rows, base.len()], &Device::Cpu).unwrap();
    for t in [1.0f32, 2.0, 0.5] {
        let mut hits = [0usize; 5];
        for counter in 0..counters {
            for id in u32s(&ops::sample_logits(&x, t, 42, 1000, counter).unwrap()) {
                hits[id as usize] += 1;
            }
        }
        let total = (rows * counters as usize) as f64;
        let z: f64 = base.iter().map(|&v| (v as f64 / t as f64).exp()).sum();
        for (j, &h) in hits.iter().enumerate() {
            let p = (base[j] as f64 / t as f64).exp() / z;
            let se = (p * (1.0 - p) / total).sqrt();
            let f = h as f64 / total;
            assert!(
                (f - p).abs() <= 5.0 * se,
                "T={t} token {j}: {f} vs {p} ({hits:?})"
            );
        }
    }
}

#[test]
fn sample_logits_streams_follow_the_row_and_the_counter() {
    // Row b draws from stream stream_base + b: row 1 with base 0 is row 0 with base 1.
    let x = logits(600, 2, 300, &Device::Cpu);
    let one = Tensor::from_f32(f32s(&x)[300..].to_vec(), &[1, 300], &Device::Cpu).unwrap();
    for counter in 0..20 {
        let both = u32s(&ops::sample_logits(&x, 1.0, 3, 0, counter).unwrap());
        let second = u32s(&ops::sample_logits(&one, 1.0, 3, 1, counter).unwrap());
        assert_eq!(both[1], second[0]);
    }
    // Different counters give different draws (flat logits: 300 choices).
    let flat = Tensor::zeros(&[1, 300], &Device::Cpu).unwrap();
    let ids: std::collections::HashSet<u32> = (0..50)
        .map(|c| u32s(&ops::sample_logits(&flat, 1.0, 3, 0, c).unwrap())[0])
        .collect();
    assert!(ids.len() > 30, "{ids:?}");
    // The draw is the uniform's Gumbel, as `rng` defines it.
    assert!(uniform_of_bits(u32::MAX) < 1.0);
}

// ---- certainty -----------------------------------------------------------------------------------

#[test]
fn certainty_of_hand_worked_rows() {
    // [0, ln 3]: p = (1/4, 3/4), sum p ln p = 0.25 ln 0.25 + 0.75 ln 0.75 = -0.562335.
    // Four equal logits: -ln 4. One dominant logit (50 above the rest): ~0.
    // Row 0 pads with two logits of probability 0: exp(-1e30 - max) and exp(-inf) are 0.
    let x = Tensor::from_f32(
        vec![
            0.0,
            3f32.ln(),
            -1e30,
            f32::NEG_INFINITY,
            7.0,
            7.0,
            7.0,
            7.0,
            50.0,
            0.0,
            0.0,
            0.0,
        ],
        &[3, 4],
        &Device::Cpu,
    )
    .unwrap();
    let want = [
        (0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln()) as f32,
        -(4f32.ln()),
        0.0,
    ];
    assert_close(
        "certainty cpu",
        &f32s(&ops::certainty(&x).unwrap()),
        &want,
        1e-6,
        1e-6,
    );
    for gpu in gpus() {
        let got = f32s(&ops::certainty(&x.to_device(&gpu).unwrap()).unwrap());
        assert_close("certainty wgpu", &got, &want, 1e-6, 1e-6);
    }
}

#[test]
fn certainty_matches_cpu_and_the_critics_host_formula() {
    for (s, &(b, v, _)) in SHAPES.iter().enumerate() {
        let x = logits(700 + s as u64, b, v, &Device::Cpu);
        let cpu = f32s(&ops::certainty(&x).unwrap());
        // The critic's formula from log-probabilities.
        let lp = f32s(&ops::log_softmax(&x).unwrap());
        let host: Vec<f32> = lp.chunks(v).map(crsm::latent::critic::certainty).collect();
        assert_close(
            &format!("certainty vs host B={b} V={v}"),
            &cpu,
            &host,
            1e-4,
            1e-5,
        );
        for gpu in gpus() {
            let got = f32s(&ops::certainty(&x.to_device(&gpu).unwrap()).unwrap());
            // f32 sums of up to 50280 terms on the device against f64 on the cpu.
            assert_close(
                &format!("certainty wgpu B={b} V={v}"),
                &got,
                &cpu,
                1e-4,
                1e-5,
            );
        }
    }
}

// ---- chunked launches, errors, the tape ----------------------------------------------------------

#[test]
fn rollout_ops_split_into_row_chunks_match_cpu() {
    // A 16 KiB binding limit with 256-byte offsets: the [B] outputs (4 bytes a row) need chunks of
    // 64 rows, and 64 rows of 64 logits are exactly 16 KiB, so 150 rows run as 64 + 64 + 22. The
    // sample's streams must continue across chunks (row_offset).
    let limits = BindingLimits {
        max_binding_bytes: 16384,
        offset_alignment: 256,
    };
    let Some(ctx): Option<Arc<WgpuContext>> = lavapipe_with_binding_limits(limits) else {
        return;
    };
    let (b, v) = (150, 64);
    assert_eq!(
        ctx.row_chunks("test", b, &[v as u64 * 4, 4]).unwrap().len(),
        3
    );
    let gpu = Device::Wgpu(ctx);
    let x = logits(800, b, v, &Device::Cpu);
    let xg = x.to_device(&gpu).unwrap();
    let (cv, ci) = ops::top_k(&x, 5).unwrap();
    let (gv, gi) = ops::top_k(&xg, 5).unwrap();
    assert_eq!(u32s(&gi), u32s(&ci));
    assert_eq!(f32s(&gv), f32s(&cv));
    assert_eq!(
        u32s(&ops::sample_logits(&xg, 1.0, 5, 11, 2).unwrap()),
        u32s(&ops::sample_logits(&x, 1.0, 5, 11, 2).unwrap())
    );
    assert_close(
        "certainty chunked",
        &f32s(&ops::certainty(&xg).unwrap()),
        &f32s(&ops::certainty(&x).unwrap()),
        1e-5,
        1e-5,
    );
}

#[test]
fn rollout_ops_reject_bad_arguments_naming_them() {
    let t = |shape: &[usize]| Tensor::zeros(shape, &Device::Cpu).unwrap();
    let e = ops::top_k(&t(&[2, 100]), 65).unwrap_err().to_string();
    assert!(e.contains("top_k") && e.contains("k = 65"), "{e}");
    let e = ops::top_k(&t(&[2, 100]), 0).unwrap_err().to_string();
    assert!(e.contains("top_k") && e.contains("k = 0"), "{e}");
    let e = ops::topk_log_softmax(&t(&[2, 5]), 6)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("topk_log_softmax") && e.contains("[2, 5]"),
        "{e}"
    );
    let e = ops::top_k(&t(&[2, 3, 5]), 2).unwrap_err().to_string();
    assert!(e.contains("top_k") && e.contains("[2, 3, 5]"), "{e}");
    let e = ops::certainty(&t(&[4, 0])).unwrap_err().to_string();
    assert!(e.contains("certainty") && e.contains("[4, 0]"), "{e}");
    let e = ops::sample_logits(&t(&[2, 5]), -1.0, 0, 0, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample_logits") && e.contains("-1"), "{e}");
    let ids = Tensor::from_u32(vec![1, 2], &[1, 2], &Device::Cpu).unwrap();
    let e = ops::sample_logits(&ids, 1.0, 0, 0, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample_logits") && e.contains("logits"), "{e}");
}

#[test]
fn rollout_ops_do_not_record_on_the_tape() {
    let x = logits(900, 2, 50, &Device::Cpu).as_variable();
    let (values, indices) = ops::top_k(&x, 4).unwrap();
    let (lp, _) = ops::topk_log_softmax(&x, 4).unwrap();
    for out in [values, indices, lp, ops::certainty(&x).unwrap()] {
        assert!(!out.requires_grad());
    }
    assert!(
        !ops::sample_logits(&x, 1.0, 0, 0, 0)
            .unwrap()
            .requires_grad()
    );
}
