//! layer_mix (hierarchical policy fusion): wgpu against cpu (forward and both gradients), finite
//! differences, limiting cases, bad input.
//!
//! Derivative of out = sum_i s_i xs_i, s = softmax(logits), with ds_j/dlogit_i = s_j (delta_ij - s_i):
//!   dL/dxs_i = s_i g,   dL/dlogits_i = s_i (<g, xs_i> - sum_j s_j <g, xs_j>).

use crate::common::*;
use crsm::{Device, Tensor, ops};

fn f(v: &[Tensor]) -> Tensor {
    ops::layer_mix(&v[0], &v[1]).unwrap()
}

#[test]
fn layer_mix_matches_cpu() {
    // One layer; odd sizes; a rest of rank 2; m past one 4096-value chunk of the logits gradient;
    // more layers than the 256 invocations of the softmax workgroup.
    let shapes: &[&[usize]] = &[
        &[1, 5],
        &[3, 7],
        &[4, 2, 33],
        &[5, 5000],
        &[300, 3],
        &[2, 1],
    ];
    for (s, shape) in shapes.iter().enumerate() {
        let xs = rand_tensor(s as u64, shape, -2.0, 2.0, &Device::Cpu);
        let logits = rand_tensor(50 + s as u64, &[shape[0]], -3.0, 3.0, &Device::Cpu);
        check_parity(
            &format!("layer_mix {shape:?}"),
            &[xs, logits],
            f,
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn layer_mix_gradients_match_finite_differences() {
    let shapes: &[&[usize]] = &[&[1, 4], &[3, 7], &[4, 2, 5], &[2, 1]];
    for (s, shape) in shapes.iter().enumerate() {
        let xs = rand_tensor(10 + s as u64, shape, -2.0, 2.0, &Device::Cpu);
        let logits = rand_tensor(60 + s as u64, &[shape[0]], -1.0, 1.0, &Device::Cpu);
        check_gradients(&format!("layer_mix {shape:?}"), &[xs, logits], f);
    }
}

#[test]
fn layer_mix_reduces_to_mean_and_to_last_layer() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    let xs = rand_tensor(20, &[3, 2, 4], -1.0, 1.0, &Device::Cpu);
    let v = xs.to_vec_f32().unwrap();
    let mean: Vec<f32> = (0..8)
        .map(|n| (v[n] + v[8 + n] + v[16 + n]) / 3.0)
        .collect();
    for d in &devices {
        let x = xs.to_device(d).unwrap();
        // Equal logits: the plain average of the layers.
        let out = ops::layer_mix(&x, &Tensor::from_f32(vec![0.5; 3], &[3], d).unwrap()).unwrap();
        assert_eq!(out.shape(), [2, 4]);
        assert_close(
            &format!("equal weights on {}", d.name()),
            &out.to_vec_f32().unwrap(),
            &mean,
            1e-6,
            1e-6,
        );
        // A dominant last logit: a plain Mamba's last layer (large logits must not overflow).
        let out = ops::layer_mix(
            &x,
            &Tensor::from_f32(vec![0.0, 0.0, 200.0], &[3], d).unwrap(),
        )
        .unwrap();
        assert_close(
            &format!("one-hot on {}", d.name()),
            &out.to_vec_f32().unwrap(),
            &v[16..],
            1e-6,
            1e-6,
        );
    }
}

#[test]
fn layer_mix_rejects_bad_input() {
    let cpu = Device::Cpu;
    let xs = Tensor::zeros(&[3, 2, 4], &cpu).unwrap();
    let e = ops::layer_mix(&xs, &Tensor::zeros(&[2], &cpu).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layer_mix") && e.contains("[2]") && e.contains("[3, 2, 4]"),
        "{e}"
    );
    let e = ops::layer_mix(&xs, &Tensor::zeros(&[3, 1], &cpu).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer_mix") && e.contains("[3, 1]"), "{e}");
    let e = ops::layer_mix(
        &Tensor::zeros(&[0, 4], &cpu).unwrap(),
        &Tensor::zeros(&[0], &cpu).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("layer_mix") && e.contains("[0, 4]"), "{e}");
}
