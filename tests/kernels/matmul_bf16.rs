//! bf16 inference weights (`ops::to_bf16`, `matmul` with a bf16 weight): the cpu kernel against
//! the f32 product with the weights rounded to bf16 (the same products, summed in another order),
//! through both of its paths (dot products for few rows, widened gemm for many); the rounding
//! itself; refusals; and a backend without the kernel answering `Unsupported`.

use crate::common::*;
use crsm::{DType, Device, Error, Tensor, no_grad, ops};

/// (M, K, N): one row (a decode step), a ragged K (not a multiple of 16) and N (not of 32), the
/// last dot-product size, and the widened-gemm path.
const SHAPES: &[(usize, usize, usize)] = &[(1, 48, 40), (3, 37, 70), (4, 100, 33), (65, 64, 31)];

/// The weights rounded to bf16 and back, as f32.
fn rounded(w: &Tensor) -> Tensor {
    let v: Vec<f32> = w
        .to_vec_f32()
        .unwrap()
        .into_iter()
        .map(|x| half::bf16::from_f32(x).to_f32())
        .collect();
    Tensor::from_f32(v, w.shape(), &Device::Cpu).unwrap()
}

#[test]
fn bf16_weights_match_the_f32_product_of_the_rounded_weights() {
    let _off = no_grad();
    for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
        let a = rand_tensor(1100 + s as u64, &[m, k], -1.0, 1.0, &Device::Cpu);
        let w = rand_tensor(1200 + s as u64, &[n, k], -1.0, 1.0, &Device::Cpu);
        let w16 = ops::to_bf16(&w).unwrap();
        assert_eq!(w16.dtype(), DType::BF16);
        let got = ops::matmul(&a, &w16, false, true).unwrap();
        let want = ops::matmul(&a, &rounded(&w), false, true).unwrap();
        // Same products of exactly representable values, summed in another order.
        let atol = 1e-6 * k as f32;
        assert_tensors_close(
            &format!("bf16 weights {m}x{k}x{n}"),
            &got,
            &want,
            1e-5,
            atol,
        );
        // And the rounding matters: the unrounded product differs by more than the tolerance.
        let exact = ops::matmul(&a, &w, false, true)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let got = got.to_vec_f32().unwrap();
        let max = got
            .iter()
            .zip(&exact)
            .map(|(g, e)| (g - e).abs())
            .fold(0f32, f32::max);
        assert!(
            max > atol,
            "{m}x{k}x{n}: bf16 product equals the f32 one ({max})"
        );
    }
}

#[test]
fn linear_takes_bf16_weights_with_a_bias() {
    let _off = no_grad();
    let x = rand_tensor(1300, &[2, 3, 24], -1.0, 1.0, &Device::Cpu);
    let w = rand_tensor(1301, &[10, 24], -1.0, 1.0, &Device::Cpu);
    let b = rand_tensor(1302, &[10], -1.0, 1.0, &Device::Cpu);
    let got = ops::linear(&x, &ops::to_bf16(&w).unwrap(), Some(&b)).unwrap();
    let want = ops::linear(&x, &rounded(&w), Some(&b)).unwrap();
    assert_eq!(got.shape(), [2, 3, 10]);
    assert_tensors_close("linear bf16", &got, &want, 1e-5, 3e-5);
}

#[test]
fn bf16_rounds_to_nearest_even() {
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even mantissa (1).
    // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties go to 1 + 2^-6.
    let x = Tensor::from_f32(
        vec![1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8), -2.5],
        &[3],
        &Device::Cpu,
    )
    .unwrap();
    let w = ops::to_bf16(&x).unwrap();
    let one = Tensor::from_f32(vec![1.0], &[1, 1], &Device::Cpu).unwrap();
    let got = ops::matmul(&one, &w.reshape(&[3, 1]).unwrap(), false, true).unwrap();
    assert_eq!(got.to_vec_f32().unwrap(), [1.0, 1.0 + 2f32.powi(-6), -2.5]);
}

#[test]
fn bf16_weights_refuse_gradients_and_other_layouts() {
    let a = rand_tensor(1400, &[2, 8], -1.0, 1.0, &Device::Cpu).as_variable();
    let w = ops::to_bf16(&rand_tensor(1401, &[4, 8], -1.0, 1.0, &Device::Cpu)).unwrap();
    let e = ops::matmul(&a, &w, false, true).unwrap_err();
    assert!(e.to_string().contains("no_grad"), "{e}");
    let _off = no_grad();
    let e = ops::matmul(&a, &w, false, false).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    assert!(e.to_string().contains("transpose_b false"), "{e}");
}

#[test]
fn a_backend_without_bf16_kernels_answers_unsupported_naming_op_and_device() {
    // The contract's default: the wgpu backend has no bf16 kernels yet.
    let Some(gpu) = lavapipe() else { return };
    let x = rand_tensor(1500, &[4, 4], -1.0, 1.0, &gpu);
    match ops::to_bf16(&x) {
        Err(Error::Unsupported { op, device }) => {
            assert_eq!(op, "to_bf16");
            assert_eq!(device, gpu.name());
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
