//! add, mul, silu, softplus, exp, scale, sum, mean, expand, sum_to_shape.

use crate::common::*;
use crsm::{Device, Tensor, ops};

/// A named unary op under test.
type UnaryCase = fn(&Tensor) -> Tensor;

const SHAPES: &[&[usize]] = &[&[1], &[7], &[3, 5], &[2, 3, 33], &[1025]];

#[test]
fn unary_ops_match_cpu_and_finite_differences() {
    for (s, shape) in SHAPES.iter().enumerate() {
        // softplus past its threshold of 20 and exp of large arguments are exercised too.
        let x = rand_tensor(s as u64, shape, -4.0, 4.0, &Device::Cpu);
        let cases: [(&str, UnaryCase); 4] = [
            ("silu", |x| ops::silu(x).unwrap()),
            ("softplus", |x| ops::softplus(x).unwrap()),
            ("exp", |x| ops::exp(x).unwrap()),
            ("scale", |x| ops::scale(x, -1.5).unwrap()),
        ];
        for (name, f) in cases {
            check_parity(
                &format!("{name} {shape:?}"),
                std::slice::from_ref(&x),
                |xs| f(&xs[0]),
                1e-5,
                1e-6,
            );
            if x.elem_count() < 100 {
                check_gradients(
                    &format!("{name} {shape:?}"),
                    std::slice::from_ref(&x),
                    |xs| f(&xs[0]),
                );
            }
        }
    }
}

#[test]
fn softplus_is_linear_past_threshold() {
    let x = Tensor::from_f32(vec![25.0, 100.0], &[2], &Device::Cpu).unwrap();
    assert_eq!(
        ops::softplus(&x).unwrap().to_vec_f32().unwrap(),
        vec![25.0, 100.0]
    );
}

#[test]
fn binary_ops_broadcast_and_match() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[7], &[7]),
        (&[4, 6], &[6]),
        (&[2, 3, 5], &[3, 5]),
        (&[3, 4], &[1]),
        (&[1], &[1]),
    ];
    for (i, (sa, sb)) in cases.iter().enumerate() {
        let a = rand_tensor(10 + i as u64, sa, -2.0, 2.0, &Device::Cpu);
        let b = rand_tensor(20 + i as u64, sb, -2.0, 2.0, &Device::Cpu);
        check_parity(
            &format!("add {sa:?}+{sb:?}"),
            &[a.clone(), b.clone()],
            |x| ops::add(&x[0], &x[1]).unwrap(),
            1e-5,
            1e-6,
        );
        check_parity(
            &format!("mul {sa:?}*{sb:?}"),
            &[a.clone(), b.clone()],
            |x| ops::mul(&x[0], &x[1]).unwrap(),
            1e-5,
            1e-6,
        );
        check_gradients(&format!("add {sa:?}"), &[a.clone(), b.clone()], |x| {
            ops::add(&x[0], &x[1]).unwrap()
        });
        check_gradients(&format!("mul {sa:?}"), &[a.clone(), b.clone()], |x| {
            ops::mul(&x[0], &x[1]).unwrap()
        });
    }
}

#[test]
fn binary_rejects_shapes_that_do_not_broadcast() {
    let a = Tensor::zeros(&[2, 3], &Device::Cpu).unwrap();
    let b = Tensor::zeros(&[2], &Device::Cpu).unwrap();
    let e = ops::add(&a, &b).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("[2]") && e.contains("[2, 3]"),
        "{e}"
    );
}

#[test]
fn a_tensor_used_twice_gets_both_gradients() {
    // d/dx sum(x * x) = 2x; also binds one buffer twice in one dispatch on wgpu.
    let x = rand_tensor(5, &[9], -1.0, 1.0, &Device::Cpu);
    check_gradients("x*x", std::slice::from_ref(&x), |v| {
        ops::mul(&v[0], &v[0]).unwrap()
    });
    check_parity("x*x", &[x], |v| ops::mul(&v[0], &v[0]).unwrap(), 1e-5, 1e-6);
}

#[test]
fn reductions_match() {
    for (s, n) in [1usize, 5, 1024, 1025, 3000, 1_100_000]
        .into_iter()
        .enumerate()
    {
        let x = rand_tensor(30 + s as u64, &[n], -1.0, 1.0, &Device::Cpu);
        // Partial sums reorder the additions: tolerance grows like sqrt(n) * eps * |x|.
        let atol = 1e-5 * (n as f32).sqrt();
        check_parity(
            &format!("sum {n}"),
            std::slice::from_ref(&x),
            |v| ops::sum(&v[0]).unwrap(),
            1e-5,
            atol,
        );
        check_parity(
            &format!("mean {n}"),
            std::slice::from_ref(&x),
            |v| ops::mean(&v[0]).unwrap(),
            1e-5,
            atol,
        );
    }
    let x = rand_tensor(40, &[37, 19], -1.0, 1.0, &Device::Cpu);
    check_parity(
        "sum_to_shape",
        std::slice::from_ref(&x),
        |v| ops::sum_to_shape(&v[0], &[19]).unwrap(),
        1e-5,
        1e-5,
    );
    check_gradients("sum_to_shape", std::slice::from_ref(&x), |v| {
        ops::sum_to_shape(&v[0], &[19]).unwrap()
    });
    let y = rand_tensor(41, &[19], -1.0, 1.0, &Device::Cpu);
    check_parity(
        "expand",
        std::slice::from_ref(&y),
        |v| ops::expand(&v[0], &[4, 19]).unwrap(),
        1e-6,
        1e-6,
    );
    check_gradients("expand", &[y], |v| ops::expand(&v[0], &[4, 19]).unwrap());
}

#[test]
fn global_norm_matches_hand_computation() {
    let a = Tensor::from_f32(vec![3.0, 4.0], &[2], &Device::Cpu).unwrap();
    let b = Tensor::from_f32(vec![12.0], &[1], &Device::Cpu).unwrap();
    assert!((ops::global_norm(&[&a, &b]).unwrap() - 13.0).abs() < 1e-5);
    for gpu in gpus() {
        let (a, b) = (a.to_device(&gpu).unwrap(), b.to_device(&gpu).unwrap());
        assert!((ops::global_norm(&[&a, &b]).unwrap() - 13.0).abs() < 1e-5);
    }
}

#[test]
fn sum_to_shape_is_exact_past_65535_rows() {
    // llvmpipe stops shader loops after 65535 iterations; the column sum must not loop that long.
    for gpu in gpus() {
        let ones = Tensor::full(1.0, &[70_000, 2], &gpu).unwrap();
        assert_eq!(
            ops::sum_to_shape(&ones, &[2])
                .unwrap()
                .to_vec_f32()
                .unwrap(),
            vec![70_000.0, 70_000.0]
        );
    }
}
