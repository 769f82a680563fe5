//! narrow and concat: parity with the cpu (forward and gradients) along the first, a middle and
//! the last dimension, finite differences, u32 tensors, and the error messages.
//!
//! Both ops only copy, so wgpu must match the cpu exactly (tolerance 0). Their derivatives:
//! d narrow/dx places the output's gradient into zeros at the slice; d concat/dx_i narrows the
//! output's gradient to x_i's indices.

use crate::common::*;
use crsm::{DType, Device, Tensor, ops};

/// (shape, dim, start, len): dim 0, a middle dim, the last dim; size-1 dims, odd sizes, an empty
/// slice, a full slice, and a wide one (150_003 elements out: many workgroups, and past the cpu's
/// rayon cutoff).
const NARROW_CASES: &[(&[usize], usize, usize, usize)] = &[
    (&[7], 0, 2, 3),
    (&[5, 3], 0, 4, 1),
    (&[5, 3], 1, 1, 2),
    (&[2, 9, 3], 1, 3, 5),
    (&[2, 9, 3], 2, 2, 1),
    (&[1, 4, 1, 5], 2, 0, 1),
    (&[3, 5, 2], 0, 0, 3),
    (&[4, 6], 1, 6, 0),
    (&[3, 70_000], 1, 12_345, 50_001),
];

#[test]
fn narrow_matches_cpu_along_first_middle_and_last_dims() {
    for (i, &(shape, dim, start, len)) in NARROW_CASES.iter().enumerate() {
        let x = rand_tensor(100 + i as u64, shape, -1.0, 1.0, &Device::Cpu);
        let what = format!("narrow {shape:?} dim {dim} {start}..+{len}");
        check_parity(
            &what,
            std::slice::from_ref(&x),
            |v| ops::narrow(&v[0], dim, start, len).unwrap(),
            0.0,
            0.0,
        );
        if x.elem_count() < 200 {
            check_gradients(&what, std::slice::from_ref(&x), |v| {
                ops::narrow(&v[0], dim, start, len).unwrap()
            });
        }
    }
}

#[test]
fn narrow_picks_the_expected_elements() {
    // x = [[0, 1, 2], [3, 4, 5]]: columns 1..3 are [[1, 2], [4, 5]]; row 1 is [[3, 4, 5]].
    let x = Tensor::from_f32((0..6).map(|v| v as f32).collect(), &[2, 3], &Device::Cpu).unwrap();
    let cols = ops::narrow(&x, 1, 1, 2).unwrap();
    assert_eq!(cols.shape(), &[2, 2]);
    assert_eq!(cols.to_vec_f32().unwrap(), vec![1.0, 2.0, 4.0, 5.0]);
    assert_eq!(
        ops::narrow(&x, 0, 1, 1).unwrap().to_vec_f32().unwrap(),
        vec![3.0, 4.0, 5.0]
    );
    // The gradient lands at the slice, zeros elsewhere.
    let xv = x.as_variable();
    let seed = Tensor::from_f32(vec![10.0, 20.0, 30.0, 40.0], &[2, 2], &Device::Cpu).unwrap();
    let grads = ops::narrow(&xv, 1, 1, 2)
        .unwrap()
        .backward_with(&seed)
        .unwrap();
    assert_eq!(
        grads.get(&xv).unwrap().to_vec_f32().unwrap(),
        vec![0.0, 10.0, 20.0, 0.0, 30.0, 40.0]
    );
}

/// (shapes, dim).
const CONCAT_CASES: &[(&[&[usize]], usize)] = &[
    (&[&[3], &[1], &[4]], 0),
    (&[&[2, 5], &[3, 5]], 0),
    (&[&[2, 1, 3], &[2, 4, 3], &[2, 2, 3]], 1),
    (&[&[3, 2, 1], &[3, 2, 5]], 2),
    (&[&[1, 7], &[1, 0], &[1, 2]], 1),
    (&[&[4, 9]], 1),
    (&[&[2, 40_000], &[2, 33_333]], 1),
];

#[test]
fn concat_matches_cpu_along_first_middle_and_last_dims() {
    for (i, &(shapes, dim)) in CONCAT_CASES.iter().enumerate() {
        let xs: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| rand_tensor(200 + 10 * i as u64 + k as u64, s, -1.0, 1.0, &Device::Cpu))
            .collect();
        let what = format!("concat {shapes:?} dim {dim}");
        let f = |v: &[Tensor]| ops::concat(&v.iter().collect::<Vec<_>>(), dim).unwrap();
        check_parity(&what, &xs, f, 0.0, 0.0);
        if xs.iter().map(|x| x.elem_count()).sum::<usize>() < 200 {
            check_gradients(&what, &xs, f);
        }
    }
}

#[test]
fn concat_then_narrow_gives_back_each_part() {
    let a = rand_tensor(1, &[2, 3, 4], -1.0, 1.0, &Device::Cpu);
    let b = rand_tensor(2, &[2, 5, 4], -1.0, 1.0, &Device::Cpu);
    let c = ops::concat(&[&a, &b], 1).unwrap();
    assert_eq!(c.shape(), &[2, 8, 4]);
    assert_eq!(
        ops::narrow(&c, 1, 0, 3).unwrap().to_vec_f32().unwrap(),
        a.to_vec_f32().unwrap()
    );
    assert_eq!(
        ops::narrow(&c, 1, 3, 5).unwrap().to_vec_f32().unwrap(),
        b.to_vec_f32().unwrap()
    );
}

#[test]
fn concat_gives_gradients_only_to_inputs_that_need_them() {
    // b is a constant: its gradient is never computed, a's is the first rows of the seed.
    let a = rand_tensor(3, &[2, 3], -1.0, 1.0, &Device::Cpu).as_variable();
    let b = rand_tensor(4, &[1, 3], -1.0, 1.0, &Device::Cpu);
    let seed = rand_tensor(5, &[3, 3], -1.0, 1.0, &Device::Cpu);
    let grads = ops::concat(&[&a, &b], 0)
        .unwrap()
        .backward_with(&seed)
        .unwrap();
    assert_eq!(grads.len(), 1);
    assert_eq!(
        grads.get(&a).unwrap().to_vec_f32().unwrap(),
        seed.to_vec_f32().unwrap()[..6].to_vec()
    );
}

#[test]
fn narrow_and_concat_copy_u32_ids_bit_for_bit() {
    // Ids past 2^24 (not exact in f32) and patterns that are NaN or denormal as f32 bits.
    let ids: Vec<u32> = vec![0, 1, 16_777_217, 0x7fc0_0001, 0x0000_0001, u32::MAX, 42, 7];
    let x = Tensor::from_u32(ids.clone(), &[2, 4], &Device::Cpu).unwrap();
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for dev in &devices {
        let x = x.to_device(dev).unwrap();
        let tail = ops::narrow(&x, 1, 1, 3).unwrap();
        assert_eq!(tail.dtype(), DType::U32);
        assert_eq!(
            tail.to_vec_u32().unwrap(),
            vec![1, 16_777_217, 0x7fc0_0001, u32::MAX, 42, 7],
            "{}",
            dev.name()
        );
        let both = ops::concat(&[&x, &x], 0).unwrap();
        assert_eq!(
            both.to_vec_u32().unwrap(),
            [ids.clone(), ids.clone()].concat(),
            "{}",
            dev.name()
        );
    }
}

#[test]
fn narrow_rejects_bad_dim_start_and_len() {
    let x = Tensor::zeros(&[2, 3], &Device::Cpu).unwrap();
    let e = ops::narrow(&x, 2, 0, 1).unwrap_err().to_string();
    assert!(
        e.contains("narrow") && e.contains("dim 2") && e.contains("[2, 3]"),
        "{e}"
    );
    let e = ops::narrow(&x, 1, 2, 2).unwrap_err().to_string();
    assert!(
        e.contains("narrow")
            && e.contains("start 2")
            && e.contains("len 2")
            && e.contains("[2, 3]"),
        "{e}"
    );
    let e = ops::narrow(&x, 0, 3, 0).unwrap_err().to_string();
    assert!(
        e.contains("narrow") && e.contains("start 3") && e.contains("[2, 3]"),
        "{e}"
    );
}

#[test]
fn concat_rejects_mismatched_inputs() {
    let a = Tensor::zeros(&[2, 3], &Device::Cpu).unwrap();
    let b = Tensor::zeros(&[4, 3], &Device::Cpu).unwrap();
    let c = Tensor::zeros(&[2, 3, 1], &Device::Cpu).unwrap();
    let ids = Tensor::from_u32(vec![0; 6], &[2, 3], &Device::Cpu).unwrap();
    // Sizes differ outside the concatenated dimension.
    let e = ops::concat(&[&a, &b], 1).unwrap_err().to_string();
    assert!(
        e.contains("concat") && e.contains("[2, 3]") && e.contains("[4, 3]"),
        "{e}"
    );
    // Ranks differ.
    let e = ops::concat(&[&a, &c], 0).unwrap_err().to_string();
    assert!(
        e.contains("concat") && e.contains("[2, 3]") && e.contains("[2, 3, 1]"),
        "{e}"
    );
    // dim out of range.
    let e = ops::concat(&[&a, &a], 2).unwrap_err().to_string();
    assert!(
        e.contains("concat") && e.contains("dim 2") && e.contains("[2, 3]"),
        "{e}"
    );
    // dtypes differ.
    let e = ops::concat(&[&a, &ids], 0).unwrap_err().to_string();
    assert!(e.contains("concat") && e.contains("U32"), "{e}");
    // Nothing to concatenate.
    let e = ops::concat(&[], 0).unwrap_err().to_string();
    assert!(e.contains("concat"), "{e}");
}
