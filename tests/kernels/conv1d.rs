//! causal_conv1d: the cpu op against a naive PyTorch-style padded convolution, the wgpu kernels
//! against the cpu ones (forward and the x, weight, bias gradients), finite differences, bad input.
//!
//! Derivatives of y[b,t,c] = bias[c] + sum_j w[c,j] x[b, t-(K-1)+j, c]:
//!   dL/dx[b,s,c] = sum_j w[c,j] g[b, s+(K-1)-j, c]  (terms with s+(K-1)-j < L),
//!   dL/dw[c,j]   = sum_{b,t} g[b,t,c] x[b, t-(K-1)+j, c],   dL/dbias[c] = sum_{b,t} g[b,t,c].

use crate::common::*;
use crsm::{Device, Tensor, ops};

/// What HF Mamba does, written the PyTorch way: transpose to [B, C, L], `nn.Conv1d(C, C, K,
/// groups=C, padding=K-1)` (cross-correlation over an input zero-padded by K-1 on both sides,
/// L+K-1 outputs), keep the first L outputs, transpose back to [B, L, C].
fn naive_conv(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    b: usize,
    l: usize,
    c: usize,
    k: usize,
) -> Vec<f32> {
    let mut y = vec![0.0; b * l * c];
    for bi in 0..b {
        for ch in 0..c {
            // The padded channel: K-1 zeros, the sequence, K-1 zeros.
            let mut padded = vec![0.0; l + 2 * (k - 1)];
            for t in 0..l {
                padded[k - 1 + t] = x[(bi * l + t) * c + ch];
            }
            let full: Vec<f32> = (0..l + k - 1)
                .map(|t| {
                    bias.map_or(0.0, |bv| bv[ch])
                        + (0..k).map(|j| w[ch * k + j] * padded[t + j]).sum::<f32>()
                })
                .collect();
            for t in 0..l {
                y[(bi * l + t) * c + ch] = full[t];
            }
        }
    }
    y
}

/// (B, L, C, K): L = 1, K = 1, K = 4, C not a multiple of 256, B * L past one 64-row chunk of the
/// weight-gradient reduction.
const SHAPES: &[(usize, usize, usize, usize)] = &[
    (1, 1, 1, 1),
    (1, 1, 4, 4),
    (2, 5, 3, 4),
    (2, 7, 33, 1),
    (3, 70, 5, 4),
    (1, 9, 300, 3),
    (2, 130, 257, 4),
];

fn inputs(s: u64, (b, l, c, k): (usize, usize, usize, usize)) -> (Tensor, Tensor, Tensor) {
    let cpu = Device::Cpu;
    (
        rand_tensor(s, &[b, l, c], -2.0, 2.0, &cpu),
        rand_tensor(s + 100, &[c, k], -1.0, 1.0, &cpu),
        rand_tensor(s + 200, &[c], -1.0, 1.0, &cpu),
    )
}

fn with_bias(v: &[Tensor]) -> Tensor {
    ops::causal_conv1d(&v[0], &v[1], Some(&v[2])).unwrap()
}

fn without_bias(v: &[Tensor]) -> Tensor {
    ops::causal_conv1d(&v[0], &v[1], None).unwrap()
}

#[test]
fn causal_conv1d_matches_naive_padded_convolution() {
    for (s, &(b, l, c, k)) in SHAPES.iter().enumerate() {
        let (x, w, bias) = inputs(s as u64, (b, l, c, k));
        let (xv, wv, bv) = (
            x.to_vec_f32().unwrap(),
            w.to_vec_f32().unwrap(),
            bias.to_vec_f32().unwrap(),
        );
        let got = ops::causal_conv1d(&x, &w, Some(&bias)).unwrap();
        assert_eq!(got.shape(), [b, l, c]);
        assert_close(
            &format!("conv {b}x{l}x{c} k{k} + bias"),
            &got.to_vec_f32().unwrap(),
            &naive_conv(&xv, &wv, Some(&bv), b, l, c, k),
            1e-5,
            1e-6,
        );
        let got = ops::causal_conv1d(&x, &w, None).unwrap();
        assert_close(
            &format!("conv {b}x{l}x{c} k{k}"),
            &got.to_vec_f32().unwrap(),
            &naive_conv(&xv, &wv, None, b, l, c, k),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn causal_conv1d_matches_cpu_with_and_without_bias() {
    for (s, &dims) in SHAPES.iter().enumerate() {
        let (x, w, bias) = inputs(10 + s as u64, dims);
        check_parity(
            &format!("conv {dims:?} + bias"),
            &[x.clone(), w.clone(), bias],
            with_bias,
            1e-5,
            1e-5,
        );
        check_parity(&format!("conv {dims:?}"), &[x, w], without_bias, 1e-5, 1e-5);
    }
}

#[test]
fn causal_conv1d_gradients_match_finite_differences() {
    for (s, &dims) in [(1, 1, 2, 4), (2, 5, 3, 4), (2, 3, 2, 1), (1, 6, 2, 3)]
        .iter()
        .enumerate()
    {
        let (x, w, bias) = inputs(20 + s as u64, dims);
        check_gradients(
            &format!("conv {dims:?} + bias"),
            &[x.clone(), w.clone(), bias],
            with_bias,
        );
        check_gradients(&format!("conv {dims:?}"), &[x, w], without_bias);
    }
}

#[test]
fn causal_conv1d_is_causal() {
    // Changing x at time 3 changes no output before time 3.
    let (x, w, bias) = inputs(30, (1, 6, 2, 4));
    let mut v = x.to_vec_f32().unwrap();
    v[3 * 2] += 10.0;
    let x2 = Tensor::from_f32(v, &[1, 6, 2], &Device::Cpu).unwrap();
    let y1 = ops::causal_conv1d(&x, &w, Some(&bias))
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let y2 = ops::causal_conv1d(&x2, &w, Some(&bias))
        .unwrap()
        .to_vec_f32()
        .unwrap();
    assert_eq!(y1[..6], y2[..6]);
    assert_ne!(y1[6], y2[6]);
}

#[test]
fn causal_conv1d_rejects_bad_input() {
    let cpu = Device::Cpu;
    let x = Tensor::zeros(&[2, 5, 3], &cpu).unwrap();
    let e = ops::causal_conv1d(&x, &Tensor::zeros(&[4, 4], &cpu).unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("causal_conv1d") && e.contains("[4, 4]") && e.contains("[2, 5, 3]"),
        "{e}"
    );
    let e = ops::causal_conv1d(&x, &Tensor::zeros(&[3, 1, 4], &cpu).unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("causal_conv1d") && e.contains("[3, 1, 4]"),
        "{e}"
    );
    let e = ops::causal_conv1d(
        &x,
        &Tensor::zeros(&[3, 4], &cpu).unwrap(),
        Some(&Tensor::zeros(&[5], &cpu).unwrap()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("causal_conv1d") && e.contains("[5]") && e.contains("[2, 5, 3]"),
        "{e}"
    );
    let e = ops::causal_conv1d(
        &Tensor::zeros(&[5, 3], &cpu).unwrap(),
        &Tensor::zeros(&[3, 4], &cpu).unwrap(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("causal_conv1d") && e.contains("[5, 3]"), "{e}");
    let e = ops::causal_conv1d(&x, &Tensor::zeros(&[3, 0], &cpu).unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("causal_conv1d") && e.contains("[3, 0]"), "{e}");
}
