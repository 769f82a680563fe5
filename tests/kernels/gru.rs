//! gru_gates (fused kernel) and gru_cell (two linears + gates), PyTorch nn.GRUCell conventions.

use crate::common::*;
use crsm::{Device, Tensor, ops};

/// (B, I, H): all ones, odd sizes, and H = 33 so B * H = 132 is not a multiple of anything.
const SHAPES: &[(usize, usize, usize)] = &[(1, 1, 1), (3, 5, 7), (4, 16, 33)];

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// nn.GRUCell by its documented formula, in f64 with naive loops; `v` is x, h, w_ih, w_hh, b_ih, b_hh:
///   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
///   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
fn gru_reference(v: &[Vec<f32>], (bsz, i_sz, hid): (usize, usize, usize)) -> Vec<f32> {
    let (x, h, w_ih, w_hh, b_ih, b_hh) = (&v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
    let mut out = vec![0f32; bsz * hid];
    for b in 0..bsz {
        // Projection of gate `gate` (0 = r, 1 = z, 2 = n) for unit j.
        let proj_x = |gate: usize, j: usize| -> f64 {
            let row = gate * hid + j;
            b_ih[row] as f64
                + (0..i_sz)
                    .map(|i| w_ih[row * i_sz + i] as f64 * x[b * i_sz + i] as f64)
                    .sum::<f64>()
        };
        let proj_h = |gate: usize, j: usize| -> f64 {
            let row = gate * hid + j;
            b_hh[row] as f64
                + (0..hid)
                    .map(|i| w_hh[row * hid + i] as f64 * h[b * hid + i] as f64)
                    .sum::<f64>()
        };
        for j in 0..hid {
            let r = sigmoid(proj_x(0, j) + proj_h(0, j));
            let z = sigmoid(proj_x(1, j) + proj_h(1, j));
            let n = (proj_x(2, j) + r * proj_h(2, j)).tanh();
            out[b * hid + j] = ((1.0 - z) * n + z * h[b * hid + j] as f64) as f32;
        }
    }
    out
}

/// Inputs of gru_cell for (B, I, H): x, h, w_ih, w_hh, b_ih, b_hh. Weights in PyTorch's init range
/// scale (1/sqrt(H)) times a few, so the gates are neither saturated nor linear.
fn cell_inputs(seed: u64, (b, i, h): (usize, usize, usize)) -> Vec<Tensor> {
    let w = 1.5 / (h as f32).sqrt();
    vec![
        rand_tensor(seed, &[b, i], -1.0, 1.0, &Device::Cpu),
        rand_tensor(seed + 1, &[b, h], -1.0, 1.0, &Device::Cpu),
        rand_tensor(seed + 2, &[3 * h, i], -w, w, &Device::Cpu),
        rand_tensor(seed + 3, &[3 * h, h], -w, w, &Device::Cpu),
        rand_tensor(seed + 4, &[3 * h], -w, w, &Device::Cpu),
        rand_tensor(seed + 5, &[3 * h], -w, w, &Device::Cpu),
    ]
}

fn cell(v: &[Tensor]) -> Tensor {
    ops::gru_cell(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5]).unwrap()
}

fn gates(v: &[Tensor]) -> Tensor {
    ops::gru_gates(&v[0], &v[1], &v[2]).unwrap()
}

#[test]
fn gru_cell_matches_naive_reference() {
    for (s, &dims) in SHAPES.iter().enumerate() {
        let inputs = cell_inputs(10 * s as u64, dims);
        let v: Vec<Vec<f32>> = inputs.iter().map(|t| t.to_vec_f32().unwrap()).collect();
        let want = gru_reference(&v, dims);
        let got = cell(&inputs);
        assert_eq!(got.shape(), &[dims.0, dims.2]);
        assert_close(
            &format!("gru_cell cpu {dims:?}"),
            &got.to_vec_f32().unwrap(),
            &want,
            1e-5,
            1e-6,
        );
        for gpu in gpus() {
            let on_gpu: Vec<Tensor> = inputs.iter().map(|t| t.to_device(&gpu).unwrap()).collect();
            assert_close(
                &format!("gru_cell wgpu {dims:?}"),
                &cell(&on_gpu).to_vec_f32().unwrap(),
                &want,
                1e-5,
                1e-6,
            );
        }
    }
}

#[test]
fn gru_cell_forward_and_gradients_match_cpu() {
    // Gradients through the two linears sum over up to max(B, I, H) = 33 terms.
    for (s, &dims) in SHAPES.iter().enumerate() {
        check_parity(
            &format!("gru_cell {dims:?}"),
            &cell_inputs(20 + 10 * s as u64, dims),
            cell,
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn gru_gates_forward_and_gradients_match_cpu() {
    for (s, &(b, _, h)) in SHAPES.iter().chain(&[(5, 0, 300)]).enumerate() {
        let inputs = [
            rand_tensor(40 + s as u64, &[b, 3 * h], -3.0, 3.0, &Device::Cpu),
            rand_tensor(50 + s as u64, &[b, 3 * h], -3.0, 3.0, &Device::Cpu),
            rand_tensor(60 + s as u64, &[b, h], -1.0, 1.0, &Device::Cpu),
        ];
        check_parity(
            &format!("gru_gates B={b} H={h}"),
            &inputs,
            gates,
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn gru_gates_gradients_match_finite_differences() {
    // d gi_r = d gh_r = g (1 - z)(1 - n^2) gh_n r (1 - r); d gi_z = d gh_z = g (h - n) z (1 - z);
    // d gi_n = g (1 - z)(1 - n^2), d gh_n = that times r; d h = g z.
    // Seeds 80..82: with 70..72 the 1x1 case saturates z (0.96), leaving gi and gh gradients near
    // 1e-3, too small for the check to mean anything; these keep every input's above 0.15.
    for &(b, h) in &[(1, 1), (2, 3), (3, 7)] {
        let inputs = [
            rand_tensor(80, &[b, 3 * h], -2.0, 2.0, &Device::Cpu),
            rand_tensor(81, &[b, 3 * h], -2.0, 2.0, &Device::Cpu),
            rand_tensor(82, &[b, h], -1.0, 1.0, &Device::Cpu),
        ];
        check_gradients(&format!("gru_gates B={b} H={h}"), &inputs, gates);
    }
}

#[test]
fn gru_cell_gradients_match_finite_differences() {
    // Seed 110, not 80: with 80 the 1x1x1 cell's w_ih gradient is 2.05e-2, at the check's floor.
    for &dims in &[(1, 1, 1), (2, 3, 4)] {
        check_gradients(&format!("gru_cell {dims:?}"), &cell_inputs(110, dims), cell);
    }
}

#[test]
fn gru_cell_with_zero_weights_averages_tanh_zero_and_h() {
    // All weights and biases zero: r = z = sigmoid(0) = 1/2 and n = tanh(0) = 0, so
    // h' = 0.5 * tanh(0) + 0.5 * h = h / 2 whatever x is.
    let (b, i, h) = (2, 3, 4);
    let x = rand_tensor(90, &[b, i], -1.0, 1.0, &Device::Cpu);
    let state = Tensor::from_f32(
        vec![1.0, -2.0, 0.5, 4.0, 0.0, 3.0, -1.0, 8.0],
        &[b, h],
        &Device::Cpu,
    )
    .unwrap();
    let zeros = |shape: &[usize]| Tensor::zeros(shape, &Device::Cpu).unwrap();
    let inputs = vec![
        x,
        state,
        zeros(&[3 * h, i]),
        zeros(&[3 * h, h]),
        zeros(&[3 * h]),
        zeros(&[3 * h]),
    ];
    let want = vec![0.5, -1.0, 0.25, 2.0, 0.0, 1.5, -0.5, 4.0];
    assert_eq!(cell(&inputs).to_vec_f32().unwrap(), want);
    for gpu in gpus() {
        let on_gpu: Vec<Tensor> = inputs.iter().map(|t| t.to_device(&gpu).unwrap()).collect();
        assert_eq!(cell(&on_gpu).to_vec_f32().unwrap(), want);
    }
}

#[test]
fn gru_gates_saturate_without_overflow() {
    // Pre-activations far past tanh's and sigmoid's range: z -> 0 and n -> +-1, so h' = n exactly.
    let gi = Tensor::from_f32(
        vec![0.0, -100.0, 100.0, 0.0, -100.0, -100.0],
        &[2, 3],
        &Device::Cpu,
    )
    .unwrap();
    let gh = Tensor::zeros(&[2, 3], &Device::Cpu).unwrap();
    let h = Tensor::from_f32(vec![0.3, -0.7], &[2, 1], &Device::Cpu).unwrap();
    let want = vec![1.0, -1.0];
    assert_eq!(
        ops::gru_gates(&gi, &gh, &h).unwrap().to_vec_f32().unwrap(),
        want
    );
    for gpu in gpus() {
        let d = |t: &Tensor| t.to_device(&gpu).unwrap();
        assert_eq!(
            ops::gru_gates(&d(&gi), &d(&gh), &d(&h))
                .unwrap()
                .to_vec_f32()
                .unwrap(),
            want
        );
    }
}

#[test]
fn gru_gates_rejects_mismatched_shapes_naming_them() {
    let t = |shape: &[usize]| Tensor::zeros(shape, &Device::Cpu).unwrap();
    let e = ops::gru_gates(&t(&[2, 9]), &t(&[2, 9]), &t(&[2, 4]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gru_gates") && e.contains("[2, 9]") && e.contains("[2, 4]"),
        "{e}"
    );
    let e = ops::gru_gates(&t(&[2, 12]), &t(&[3, 12]), &t(&[2, 4]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gru_gates") && e.contains("[3, 12]") && e.contains("[2, 4]"),
        "{e}"
    );
}

#[test]
fn gru_cell_rejects_mismatched_shapes_naming_them() {
    let t = |shape: &[usize]| Tensor::zeros(shape, &Device::Cpu).unwrap();
    // w_ih has 4 input columns but x has 3.
    let e = ops::gru_cell(
        &t(&[2, 3]),
        &t(&[2, 5]),
        &t(&[15, 4]),
        &t(&[15, 5]),
        &t(&[15]),
        &t(&[15]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("gru_cell") && e.contains("[2, 3]") && e.contains("[15, 4]"),
        "{e}"
    );
    // b_hh is [3H + 1].
    let e = ops::gru_cell(
        &t(&[2, 3]),
        &t(&[2, 5]),
        &t(&[15, 3]),
        &t(&[15, 5]),
        &t(&[15]),
        &t(&[16]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("gru_cell") && e.contains("[16]"), "{e}");
}
