//! adamw_step: cpu vs lavapipe over several steps and sizes, an f64 reference of
//! torch.optim.AdamW (3 steps, with and without weight decay), a hand-checked first step, and
//! shape errors.

use crate::common::*;
use crsm::ops::{AdamWStep, adamw_step};
use crsm::{Device, Tensor};

fn hyper(step: u32, weight_decay: f32, grad_scale: f32) -> AdamWStep {
    AdamWStep {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay,
        step,
        grad_scale,
    }
}

/// torch.optim.AdamW (`_single_tensor_adamw`, amsgrad off, maximize off) in f64, one element:
///   p *= 1 - lr wd; m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2) g^2;
///   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// (the reference uses torch's lerp form on purpose: the kernel's b1 m + (1 - b1) g must agree.)
fn reference_step(p: &mut f64, m: &mut f64, v: &mut f64, g: f64, s: &AdamWStep) {
    let (lr, b1, b2, eps, wd) = (
        s.lr as f64,
        s.beta1 as f64,
        s.beta2 as f64,
        s.eps as f64,
        s.weight_decay as f64,
    );
    let t = s.step as i32;
    let g = g * s.grad_scale as f64;
    *p *= 1.0 - lr * wd;
    *m += (1.0 - b1) * (g - *m);
    *v = b2 * *v + (1.0 - b2) * g * g;
    let denom = v.sqrt() / (1.0 - b2.powi(t)).sqrt() + eps;
    *p -= lr / (1.0 - b1.powi(t)) * *m / denom;
}

/// Runs `steps` updates on `device` from fixed data; gradient k is seeded by k. Returns the final
/// (param, m, v).
fn run(
    device: &Device,
    n: usize,
    steps: u32,
    weight_decay: f32,
    grad_scale: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let _off = crsm::no_grad();
    let mut p = rand_tensor(1, &[n], -1.0, 1.0, device);
    let mut m = Tensor::zeros(&[n], device).unwrap();
    let mut v = Tensor::zeros(&[n], device).unwrap();
    for t in 1..=steps {
        let g = rand_tensor(100 + t as u64, &[n], -2.0, 2.0, device);
        let s = adamw_step(&p, &g, &m, &v, &hyper(t, weight_decay, grad_scale)).unwrap();
        (p, m, v) = (s.param, s.m, s.v);
    }
    (
        p.to_vec_f32().unwrap(),
        m.to_vec_f32().unwrap(),
        v.to_vec_f32().unwrap(),
    )
}

#[test]
fn adamw_matches_cpu_over_several_steps_and_sizes() {
    for gpu in gpus() {
        for n in [1, 7, 1000, 70_000] {
            for (wd, scale) in [(0.0, 1.0), (0.1, 0.5)] {
                let (cp, cm, cv) = run(&Device::Cpu, n, 5, wd, scale);
                let (gp, gm, gv) = run(&gpu, n, 5, wd, scale);
                // The same f32 operations in the same order; lavapipe may contract a*b + c into an
                // fma and its sqrt and division need not be correctly rounded: a few ulp.
                let what = format!("adamw n={n} wd={wd} scale={scale}");
                assert_close(&format!("{what}: param"), &gp, &cp, 1e-5, 1e-6);
                assert_close(&format!("{what}: m"), &gm, &cm, 1e-5, 1e-7);
                assert_close(&format!("{what}: v"), &gv, &cv, 1e-5, 1e-8);
            }
        }
    }
}

#[test]
fn adamw_matches_f64_reference_of_torch_for_three_steps() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for device in &devices {
        for (wd, scale) in [(0.0, 1.0), (0.1, 1.0), (0.05, 0.25)] {
            let n = 37;
            let (got_p, got_m, got_v) = run(device, n, 3, wd, scale);
            let mut p: Vec<f64> = rand_vec(1, n, -1.0, 1.0)
                .into_iter()
                .map(f64::from)
                .collect();
            let (mut m, mut v) = (vec![0f64; n], vec![0f64; n]);
            for t in 1..=3u32 {
                let g = rand_vec(100 + t as u64, n, -2.0, 2.0);
                for i in 0..n {
                    reference_step(
                        &mut p[i],
                        &mut m[i],
                        &mut v[i],
                        g[i] as f64,
                        &hyper(t, wd, scale),
                    );
                }
            }
            let f = |x: Vec<f64>| x.into_iter().map(|e| e as f32).collect::<Vec<f32>>();
            // f32 against f64: a few f32 ulp of the param and the moments; updates are ~1e-2,
            // and m / sqrt(v) amplifies relative rounding of v by 1/2 only.
            let what = format!(
                "adamw vs f64 torch reference on {} wd={wd} scale={scale}",
                device.name()
            );
            assert_close(&format!("{what}: param"), &got_p, &f(p), 1e-5, 1e-6);
            assert_close(&format!("{what}: m"), &got_m, &f(m), 1e-5, 1e-7);
            assert_close(&format!("{what}: v"), &got_v, &f(v), 1e-5, 1e-8);
        }
    }
}

#[test]
fn adamw_first_step_moves_each_param_by_lr_against_the_gradient_sign() {
    // With m = v = 0 and t = 1: m = (1 - b1) g, v = (1 - b2) g^2, so the bias-corrected m is g and
    // the corrected sqrt(v) is |g|: the update is lr * g / (|g| + eps) = lr sign(g) up to eps.
    // With wd = 0.5 the param is first scaled by 1 - lr wd = 0.995.
    let _off = crsm::no_grad();
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for device in &devices {
        let p = Tensor::from_f32(vec![1.0, -2.0, 0.5, 3.0], &[2, 2], device).unwrap();
        let g = Tensor::from_f32(vec![0.3, -4.0, 1e-3, -7.5], &[2, 2], device).unwrap();
        let zeros = Tensor::zeros(&[2, 2], device).unwrap();
        for (wd, keep) in [(0.0f32, 1.0f32), (0.5, 0.995)] {
            let s = AdamWStep {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: wd,
                step: 1,
                grad_scale: 1.0,
            };
            let out = adamw_step(&p, &g, &zeros, &zeros, &s).unwrap();
            let want = [
                1.0 * keep - 0.01,
                -2.0 * keep + 0.01,
                0.5 * keep - 0.01,
                3.0 * keep + 0.01,
            ];
            assert_close(
                &format!("first step on {} wd={wd}", device.name()),
                &out.param.to_vec_f32().unwrap(),
                &want,
                0.0,
                2e-6,
            );
            assert_close(
                "first m",
                &out.m.to_vec_f32().unwrap(),
                &[0.03, -0.4, 1e-4, -0.75],
                1e-6,
                0.0,
            );
            // 0.999 is not exact in f32: 1 - 0.999f32 = 0.00099998713, 1.3e-5 below 1e-3.
            assert_close(
                "first v",
                &out.v.to_vec_f32().unwrap(),
                &[9e-5, 1.6e-2, 1e-9, 5.625e-2],
                3e-5,
                0.0,
            );
            // The inputs are untouched (functional update).
            assert_eq!(p.to_vec_f32().unwrap(), vec![1.0, -2.0, 0.5, 3.0]);
        }
    }
}

#[test]
fn adamw_rejects_mismatched_shapes_and_step_zero() {
    let p = Tensor::zeros(&[2, 3], &Device::Cpu).unwrap();
    let other = Tensor::zeros(&[3, 2], &Device::Cpu).unwrap();
    for (g, m, v) in [(&other, &p, &p), (&p, &other, &p), (&p, &p, &other)] {
        let e = adamw_step(&p, g, m, v, &hyper(1, 0.0, 1.0))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("adamw_step") && e.contains("[2, 3]") && e.contains("[3, 2]"),
            "{e}"
        );
    }
    let e = adamw_step(&p, &p, &p, &p, &hyper(0, 0.0, 1.0))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("adamw_step") && e.contains("step") && e.contains("[2, 3]"),
        "{e}"
    );
}
