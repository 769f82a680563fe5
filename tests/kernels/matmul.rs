//! matmul (all four transpose combinations) and linear.

use crate::common::*;
use crsm::{Device, Tensor, ops};

/// (M, K, N): size-1 dims, odd sizes, sizes that do not divide the 64x64 tile or its K step of 16,
/// one exact multiple, and one spanning several tiles in every direction.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 5, 7),
    (17, 33, 9),
    (64, 64, 64),
    (130, 70, 257),
];

const FLAGS: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

/// The stored shape of an operand: [rows, cols], or [cols, rows] when transposed.
fn stored(rows: usize, cols: usize, transposed: bool) -> [usize; 2] {
    if transposed {
        [cols, rows]
    } else {
        [rows, cols]
    }
}

/// C = op(A) op(B) by the definition, in f64.
fn reference(
    a: &[f32],
    b: &[f32],
    (m, k, n): (usize, usize, usize),
    ta: bool,
    tb: bool,
) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for l in 0..k {
                let av = if ta { a[l * m + i] } else { a[i * k + l] };
                let bv = if tb { b[j * k + l] } else { b[l * n + j] };
                s += av as f64 * bv as f64;
            }
            c[i * n + j] = s as f32;
        }
    }
    c
}

/// fp32 tolerance for sums of `len` products of values in [-1, 1]: rtol 1e-4, atol 1e-5 * sqrt(len).
/// The two devices add in different orders; the rounding of such a sum grows like sqrt(len) times
/// its typical magnitude (sqrt(len / 9) here) times 6e-8, so this leaves a margin of about 30 at
/// len = 257 while a wrong index is off by O(1).
fn atol(len: usize) -> f32 {
    1e-5 * (len as f32).sqrt()
}

/// A few rows times a Linear weight (transpose_b) takes the cpu's dot-product path (`matvec.rs`):
/// one row, the last row count it takes, a K with a ragged tail of 16-lane chunks, and weights
/// large enough to be split over the thread pool (N K >= 65536) and small enough not to be.
#[test]
fn few_rows_times_a_linear_weight_match_the_reference() {
    for (s, &(m, k, n)) in [(1, 300, 257), (4, 300, 257), (2, 16, 40), (3, 7, 5)]
        .iter()
        .enumerate()
    {
        let a = rand_tensor(150 + s as u64, &[m, k], -1.0, 1.0, &Device::Cpu);
        let b = rand_tensor(250 + s as u64, &[n, k], -1.0, 1.0, &Device::Cpu);
        let c = ops::matmul(&a, &b, false, true).unwrap();
        let want = reference(
            &a.to_vec_f32().unwrap(),
            &b.to_vec_f32().unwrap(),
            (m, k, n),
            false,
            true,
        );
        let what = format!("matmul cpu dots {m}x{k}x{n}");
        assert_close(&what, &c.to_vec_f32().unwrap(), &want, 1e-4, atol(k));
    }
}

#[test]
fn matmul_matches_reference_for_all_transposes() {
    for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
        for (ta, tb) in FLAGS {
            let a = rand_tensor(100 + s as u64, &stored(m, k, ta), -1.0, 1.0, &Device::Cpu);
            let b = rand_tensor(200 + s as u64, &stored(k, n, tb), -1.0, 1.0, &Device::Cpu);
            let c = ops::matmul(&a, &b, ta, tb).unwrap();
            assert_eq!(c.shape(), &[m, n]);
            let want = reference(
                &a.to_vec_f32().unwrap(),
                &b.to_vec_f32().unwrap(),
                (m, k, n),
                ta,
                tb,
            );
            assert_close(
                &format!("matmul cpu {m}x{k}x{n} ta={ta} tb={tb}"),
                &c.to_vec_f32().unwrap(),
                &want,
                1e-4,
                atol(k),
            );
            for gpu in gpus() {
                let c = ops::matmul(
                    &a.to_device(&gpu).unwrap(),
                    &b.to_device(&gpu).unwrap(),
                    ta,
                    tb,
                )
                .unwrap();
                assert_close(
                    &format!("matmul wgpu {m}x{k}x{n} ta={ta} tb={tb}"),
                    &c.to_vec_f32().unwrap(),
                    &want,
                    1e-4,
                    atol(k),
                );
            }
        }
    }
}

#[test]
fn matmul_forward_and_gradients_match_cpu_for_all_transposes() {
    for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
        for (ta, tb) in FLAGS {
            let a = rand_tensor(300 + s as u64, &stored(m, k, ta), -1.0, 1.0, &Device::Cpu);
            let b = rand_tensor(400 + s as u64, &stored(k, n, tb), -1.0, 1.0, &Device::Cpu);
            // dA sums over N and dB over M: the tolerance follows the longest sum.
            let tol = atol(m.max(k).max(n));
            let f = |x: &[Tensor]| ops::matmul(&x[0], &x[1], ta, tb).unwrap();
            check_parity(
                &format!("matmul {m}x{k}x{n} ta={ta} tb={tb}"),
                &[a, b],
                f,
                1e-4,
                tol,
            );
        }
    }
}

#[test]
fn matmul_gradients_match_finite_differences_for_all_transposes() {
    // dA = G op(B)^T and dB = op(A)^T G, each in its operand's stored layout.
    for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (4, 1, 6), (6, 9, 2)] {
        for (ta, tb) in FLAGS {
            let a = rand_tensor(500, &stored(m, k, ta), -1.0, 1.0, &Device::Cpu);
            let b = rand_tensor(600, &stored(k, n, tb), -1.0, 1.0, &Device::Cpu);
            let f = |x: &[Tensor]| ops::matmul(&x[0], &x[1], ta, tb).unwrap();
            check_gradients(&format!("matmul {m}x{k}x{n} ta={ta} tb={tb}"), &[a, b], f);
        }
    }
}

#[test]
fn matmul_with_empty_inner_dimension_is_zero() {
    let a = Tensor::zeros(&[3, 0], &Device::Cpu).unwrap();
    let b = Tensor::zeros(&[0, 2], &Device::Cpu).unwrap();
    assert_eq!(
        ops::matmul(&a, &b, false, false)
            .unwrap()
            .to_vec_f32()
            .unwrap(),
        vec![0.0; 6]
    );
    for gpu in gpus() {
        let c = ops::matmul(
            &a.to_device(&gpu).unwrap(),
            &b.to_device(&gpu).unwrap(),
            false,
            false,
        )
        .unwrap();
        assert_eq!(c.to_vec_f32().unwrap(), vec![0.0; 6]);
    }
}

#[test]
fn matmul_covers_more_row_tiles_than_one_grid_dimension_holds() {
    // 65536 * 64 + 3 rows need 65537 row tiles: the grid folds them over y and z. K = N = 1 keeps it
    // at 16 MiB per operand.
    for gpu in gpus() {
        let m = 65536 * 64 + 3;
        let a = rand_tensor(700, &[m, 1], -1.0, 1.0, &Device::Cpu);
        let b = Tensor::from_f32(vec![-2.0], &[1, 1], &Device::Cpu).unwrap();
        let want: Vec<f32> = a.to_vec_f32().unwrap().iter().map(|v| -2.0 * v).collect();
        let c = ops::matmul(
            &a.to_device(&gpu).unwrap(),
            &b.to_device(&gpu).unwrap(),
            false,
            false,
        )
        .unwrap();
        assert_close(
            "matmul folded grid",
            &c.to_vec_f32().unwrap(),
            &want,
            0.0,
            0.0,
        );
    }
}

#[test]
fn matmul_rejects_inner_dimension_mismatch_naming_both_shapes() {
    let a = Tensor::zeros(&[2, 3], &Device::Cpu).unwrap();
    let b = Tensor::zeros(&[4, 5], &Device::Cpu).unwrap();
    let e = ops::matmul(&a, &b, false, false).unwrap_err().to_string();
    assert!(
        e.contains("matmul") && e.contains("[2, 3]") && e.contains("[4, 5]"),
        "{e}"
    );
    // With transpose_b, b [4, 5] offers K = 5: still no match for K = 3.
    let e = ops::matmul(&a, &b, false, true).unwrap_err().to_string();
    assert!(
        e.contains("matmul") && e.contains("[2, 3]") && e.contains("[4, 5]"),
        "{e}"
    );
}

#[test]
fn matmul_rejects_inputs_that_are_not_2d_naming_both_shapes() {
    let a = Tensor::zeros(&[2, 3, 4], &Device::Cpu).unwrap();
    let b = Tensor::zeros(&[4, 5], &Device::Cpu).unwrap();
    let e = ops::matmul(&a, &b, false, false).unwrap_err().to_string();
    assert!(
        e.contains("matmul") && e.contains("[2, 3, 4]") && e.contains("[4, 5]"),
        "{e}"
    );
    let v = Tensor::zeros(&[4], &Device::Cpu).unwrap();
    let e = ops::matmul(&b, &v, false, false).unwrap_err().to_string();
    assert!(
        e.contains("matmul") && e.contains("[4, 5]") && e.contains("[4]"),
        "{e}"
    );
}

// ---- linear --------------------------------------------------------------------------------------

/// y[r, o] = sum_i x[r, i] w[o, i] + bias[o], by the definition (nn.Linear).
fn linear_reference(x: &[f32], w: &[f32], bias: Option<&[f32]>, k: usize, n: usize) -> Vec<f32> {
    let rows = x.len() / k;
    let mut y = vec![0f32; rows * n];
    for r in 0..rows {
        for o in 0..n {
            let s: f64 = (0..k)
                .map(|i| x[r * k + i] as f64 * w[o * k + i] as f64)
                .sum();
            y[r * n + o] = s as f32 + bias.map_or(0.0, |b| b[o]);
        }
    }
    y
}

#[test]
fn linear_matches_reference_with_and_without_bias_and_3d_input() {
    let (k, n) = (5, 6);
    let w = rand_tensor(800, &[n, k], -1.0, 1.0, &Device::Cpu);
    let bias = rand_tensor(801, &[n], -1.0, 1.0, &Device::Cpu);
    for (s, x_shape) in [&[3, k][..], &[2, 3, k][..], &[k][..]]
        .into_iter()
        .enumerate()
    {
        let x = rand_tensor(810 + s as u64, x_shape, -1.0, 1.0, &Device::Cpu);
        let mut out_shape = x_shape.to_vec();
        *out_shape.last_mut().unwrap() = n;
        let (xv, wv, bv) = (
            x.to_vec_f32().unwrap(),
            w.to_vec_f32().unwrap(),
            bias.to_vec_f32().unwrap(),
        );
        for with_bias in [false, true] {
            let what = format!("linear x {x_shape:?} bias {with_bias}");
            let b = with_bias.then_some(&bias);
            let y = ops::linear(&x, &w, b).unwrap();
            assert_eq!(y.shape(), &out_shape[..], "{what}");
            let want = linear_reference(&xv, &wv, with_bias.then_some(&bv[..]), k, n);
            assert_close(&what, &y.to_vec_f32().unwrap(), &want, 1e-5, 1e-6);
            if with_bias {
                let inputs = [x.clone(), w.clone(), bias.clone()];
                let f = |v: &[Tensor]| ops::linear(&v[0], &v[1], Some(&v[2])).unwrap();
                check_parity(&what, &inputs, f, 1e-4, 1e-5);
                check_gradients(&what, &inputs, f);
            } else {
                let inputs = [x.clone(), w.clone()];
                let f = |v: &[Tensor]| ops::linear(&v[0], &v[1], None).unwrap();
                check_parity(&what, &inputs, f, 1e-4, 1e-5);
                check_gradients(&what, &inputs, f);
            }
        }
    }
}

#[test]
fn linear_rejects_mismatched_shapes_naming_them() {
    let x = Tensor::zeros(&[2, 3, 4], &Device::Cpu).unwrap();
    let w = Tensor::zeros(&[6, 5], &Device::Cpu).unwrap();
    let e = ops::linear(&x, &w, None).unwrap_err().to_string();
    assert!(
        e.contains("linear") && e.contains("[2, 3, 4]") && e.contains("[6, 5]"),
        "{e}"
    );
    let w = Tensor::zeros(&[6, 4], &Device::Cpu).unwrap();
    let bias = Tensor::zeros(&[5], &Device::Cpu).unwrap();
    let e = ops::linear(&x, &w, Some(&bias)).unwrap_err().to_string();
    assert!(
        e.contains("linear") && e.contains("[5]") && e.contains("[6, 4]"),
        "{e}"
    );
}
