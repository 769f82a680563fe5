//! rms_norm: the wgpu kernel against the cpu one (forward and both gradients), the cpu one against
//! a naive transcription of HF's MambaRMSNorm, finite differences, and bad input.
//!
//! Derivative (r = (mean(x^2) + eps)^(-1/2), y_j = x_j r w_j):
//!   dL/dx_k = r w_k g_k - (r^3 / D) x_k sum_j g_j w_j x_j,   dL/dw_j = sum over rows of g_j x_j r.

use crate::common::*;
use crsm::{DType, Device, Tensor, ops};

const EPS: f32 = 1e-5;

/// HF transformers `MambaRMSNorm.forward`, line for line:
///   variance = hidden_states.pow(2).mean(-1, keepdim=True)
///   hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
///   return self.weight * hidden_states
fn naive_rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let d = w.len();
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let variance = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let r = 1.0 / (variance + eps).sqrt();
        out.extend(row.iter().zip(w).map(|(v, wj)| wj * (v * r)));
    }
    out
}

fn f(xs: &[Tensor], eps: f32) -> Tensor {
    ops::rms_norm(&xs[0], &xs[1], eps).unwrap()
}

#[test]
fn rms_norm_matches_naive_hf_reference() {
    for (s, shape) in [&[1usize][..], &[3, 5], &[2, 3, 33], &[4, 300]]
        .into_iter()
        .enumerate()
    {
        let d = *shape.last().unwrap();
        let x = rand_tensor(s as u64, shape, -3.0, 3.0, &Device::Cpu);
        let w = rand_tensor(100 + s as u64, &[d], 0.5, 1.5, &Device::Cpu);
        let want = naive_rms_norm(&x.to_vec_f32().unwrap(), &w.to_vec_f32().unwrap(), EPS);
        let got = ops::rms_norm(&x, &w, EPS).unwrap();
        assert_eq!(got.shape(), shape);
        assert_close(
            &format!("rms_norm {shape:?} cpu vs naive"),
            &got.to_vec_f32().unwrap(),
            &want,
            1e-5,
            1e-6,
        );
        for gpu in gpus() {
            let got = ops::rms_norm(
                &x.to_device(&gpu).unwrap(),
                &w.to_device(&gpu).unwrap(),
                EPS,
            )
            .unwrap();
            assert_close(
                &format!("rms_norm {shape:?} wgpu vs naive"),
                &got.to_vec_f32().unwrap(),
                &want,
                1e-5,
                1e-6,
            );
        }
    }
}

#[test]
fn rms_norm_matches_cpu_for_widths_not_multiple_of_workgroup() {
    // D = 1, 5, 33, 300 (not multiples of 256), 256 exactly, and 2560 (ten strides of the workgroup);
    // 130 rows reduce dweight in three 64-row chunks.
    let shapes: &[&[usize]] = &[
        &[1],
        &[1, 1],
        &[7, 5],
        &[2, 3, 33],
        &[3, 300],
        &[2, 256],
        &[2, 2560],
        &[130, 5],
    ];
    for (s, shape) in shapes.iter().enumerate() {
        let d = *shape.last().unwrap();
        let x = rand_tensor(10 + s as u64, shape, -2.0, 2.0, &Device::Cpu);
        let w = rand_tensor(20 + s as u64, &[d], -1.5, 1.5, &Device::Cpu);
        check_parity(
            &format!("rms_norm {shape:?}"),
            &[x, w],
            |v| f(v, EPS),
            2e-5,
            2e-6,
        );
    }
}

#[test]
fn rms_norm_gradients_match_finite_differences() {
    // D = 1 is y = w x / sqrt(x^2 + eps), nearly sign(x) w: a larger eps keeps it smooth at the
    // finite-difference step.
    let cases: &[(&[usize], f32)] = &[
        (&[2, 1], 0.5),
        (&[3, 5], EPS),
        (&[2, 33], EPS),
        (&[2, 2, 7], 1e-3),
    ];
    for (s, (shape, eps)) in cases.iter().enumerate() {
        let d = *shape.last().unwrap();
        let x = rand_tensor(30 + s as u64, shape, -2.0, 2.0, &Device::Cpu);
        let w = rand_tensor(40 + s as u64, &[d], -1.5, 1.5, &Device::Cpu);
        check_gradients(&format!("rms_norm {shape:?}"), &[x, w], |v| f(v, *eps));
    }
}

#[test]
fn rms_norm_gradient_of_frozen_weight_is_skipped() {
    // Only x is a variable: backward returns its gradient and nothing for the weight.
    let x = rand_tensor(50, &[2, 5], -1.0, 1.0, &Device::Cpu).as_variable();
    let w = rand_tensor(51, &[5], -1.0, 1.0, &Device::Cpu);
    let grads = ops::sum(&ops::rms_norm(&x, &w, EPS).unwrap())
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(&x).is_some() && grads.get(&w).is_none());
}

#[test]
fn rms_norm_rejects_bad_input() {
    let cpu = Device::Cpu;
    let x = Tensor::zeros(&[2, 3], &cpu).unwrap();
    let e = ops::rms_norm(&x, &Tensor::zeros(&[4], &cpu).unwrap(), EPS)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rms_norm") && e.contains("[4]") && e.contains("[2, 3]"),
        "{e}"
    );
    let e = ops::rms_norm(
        &Tensor::zeros(&[2, 0], &cpu).unwrap(),
        &Tensor::zeros(&[0], &cpu).unwrap(),
        EPS,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("rms_norm") && e.contains("[2, 0]"), "{e}");
    let ids = Tensor::from_u32(vec![0; 6], &[2, 3], &cpu).unwrap();
    let e = ops::rms_norm(&ids, &Tensor::zeros(&[3], &cpu).unwrap(), EPS)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rms_norm") && e.contains(&format!("{:?}", DType::U32)),
        "{e}"
    );
    let e = ops::rms_norm(&x, &Tensor::zeros(&[3], &cpu).unwrap(), -1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("rms_norm") && e.contains("eps"), "{e}");
}

#[test]
fn rms_norm_matches_cpu_past_65535_rows() {
    // More rows than workgroups fit in one dispatch dimension (the 2-D grid path), and more rows
    // than lavapipe runs iterations of one shader loop (llvmpipe stops loops at 65535): dweight's
    // reduction over rows must be chunked. About 10 s on lavapipe; the only large test here.
    let x = rand_tensor(60, &[70_000, 2], -2.0, 2.0, &Device::Cpu);
    let w = rand_tensor(61, &[2], -1.5, 1.5, &Device::Cpu);
    check_parity("rms_norm [70000, 2]", &[x, w], |v| f(v, EPS), 2e-5, 2e-6);
}
