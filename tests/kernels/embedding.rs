//! embedding: parity with the cpu (forward and the table's gradient), finite differences with
//! respect to the table, repeated ids, 1-D and 2-D ids, L = 1, odd D, and out-of-range ids.
//!
//! Forward is a copy (wgpu must match exactly). Backward: d out[t, j] / d table[v, j] = [ids[t] = v],
//! so grad[v, :] = sum of g[t, :] over the tokens t with ids[t] = v. Both backends add those in
//! token order from 0, so they agree bit for bit as well (tolerance 0).

use crate::common::*;
use crsm::{Device, Error, Tensor, ops};

/// Deterministic ids in 0..v, with repeats when n > v.
fn ids(seed: u64, shape: &[usize], v: usize) -> Tensor {
    let n = shape.iter().product();
    let data = rand_vec(seed, n, 0.0, v as f32)
        .into_iter()
        .map(|x| (x as u32).min(v as u32 - 1))
        .collect();
    Tensor::from_u32(data, shape, &Device::Cpu).unwrap()
}

/// (ids shape, V, D): 1-D and 2-D [B, L] ids, L = 1, odd D, D = 1, more tokens than rows (so ids
/// repeat), and one case past the cpu's rayon cutoff with u * D well past one workgroup.
const CASES: &[(&[usize], usize, usize)] = &[
    (&[5], 7, 3),
    (&[2, 4], 5, 6),
    (&[3, 1], 4, 5),
    (&[1, 1], 1, 1),
    (&[4, 9], 6, 1),
    (&[2, 6], 3, 13),
    (&[16, 64], 300, 37),
];

#[test]
fn embedding_matches_cpu_for_1d_and_2d_ids_and_odd_widths() {
    for (i, &(shape, v, d)) in CASES.iter().enumerate() {
        let ids = ids(300 + i as u64, shape, v);
        let table = rand_tensor(400 + i as u64, &[v, d], -1.0, 1.0, &Device::Cpu);
        let what = format!("embedding ids {shape:?} table [{v}, {d}]");
        check_parity(
            &what,
            &[ids.clone(), table.clone()],
            |x| ops::embedding(&x[0], &x[1]).unwrap(),
            0.0,
            0.0,
        );
        if table.elem_count() < 200 {
            check_gradients(&what, std::slice::from_ref(&table), |x| {
                ops::embedding(&ids, &x[0]).unwrap()
            });
        }
    }
}

#[test]
fn embedding_output_has_ids_shape_plus_d_and_gathers_rows() {
    // table row r = [10 r, 10 r + 1]; ids [[2, 0, 2]] -> [[[20, 21], [0, 1], [20, 21]]].
    let table = Tensor::from_f32(
        vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0],
        &[3, 2],
        &Device::Cpu,
    )
    .unwrap();
    let ids = Tensor::from_u32(vec![2, 0, 2], &[1, 3], &Device::Cpu).unwrap();
    let out = ops::embedding(&ids, &table).unwrap();
    assert_eq!(out.shape(), &[1, 3, 2]);
    assert_eq!(
        out.to_vec_f32().unwrap(),
        vec![20.0, 21.0, 0.0, 1.0, 20.0, 21.0]
    );
}

#[test]
fn embedding_backward_accumulates_repeated_ids_on_both_backends() {
    // ids [1, 3, 1, 1], g rows [1, 2], [10, 20], [100, 200], [1000, 2000]:
    // row 1 gets 1 + 100 + 1000 = 1101 (and 2202), row 3 gets [10, 20], rows 0 and 2 stay 0.
    let ids = Tensor::from_u32(vec![1, 3, 1, 1], &[4], &Device::Cpu).unwrap();
    let table = rand_tensor(7, &[4, 2], -1.0, 1.0, &Device::Cpu);
    let seed = Tensor::from_f32(
        vec![1.0, 2.0, 10.0, 20.0, 100.0, 200.0, 1000.0, 2000.0],
        &[4, 2],
        &Device::Cpu,
    )
    .unwrap();
    let want = vec![0.0, 0.0, 1101.0, 2202.0, 0.0, 0.0, 10.0, 20.0];
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for dev in &devices {
        let table = table.to_device(dev).unwrap().as_variable();
        let out = ops::embedding(&ids.to_device(dev).unwrap(), &table).unwrap();
        let grads = out.backward_with(&seed.to_device(dev).unwrap()).unwrap();
        assert_eq!(
            grads.get(&table).unwrap().to_vec_f32().unwrap(),
            want,
            "{}",
            dev.name()
        );
    }
}

#[test]
fn embedding_backward_is_deterministic_on_wgpu() {
    // Many tokens on few rows: the case where an atomics-based scatter would reorder additions.
    for gpu in gpus() {
        let ids = ids(9, &[8, 50], 5).to_device(&gpu).unwrap();
        let table = rand_tensor(10, &[5, 33], -1.0, 1.0, &gpu).as_variable();
        let seed = rand_tensor(11, &[8, 50, 33], -1.0, 1.0, &gpu);
        let run = || {
            let grads = ops::embedding(&ids, &table)
                .unwrap()
                .backward_with(&seed)
                .unwrap();
            grads.get(&table).unwrap().to_vec_f32().unwrap()
        };
        let first = run();
        for _ in 0..3 {
            assert_eq!(run(), first);
        }
    }
}

#[test]
fn embedding_rejects_out_of_range_ids_on_both_backends() {
    let table = Tensor::zeros(&[5, 3], &Device::Cpu).unwrap();
    let ids = Tensor::from_u32(vec![0, 4, 5, 9], &[2, 2], &Device::Cpu).unwrap();
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for dev in &devices {
        let err = ops::embedding(&ids.to_device(dev).unwrap(), &table.to_device(dev).unwrap())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::IdOutOfRange {
                    op: "embedding",
                    id: 5,
                    position: 2,
                    limit: 5
                }
            ),
            "{err:?}"
        );
        let e = err.to_string();
        assert!(
            e.contains("embedding")
                && e.contains("id 5")
                && e.contains("position 2")
                && e.contains("below 5"),
            "{e}"
        );
    }
}

#[test]
fn embedding_rejects_bad_table_shape_and_dtypes() {
    let ids = Tensor::from_u32(vec![0, 1], &[2], &Device::Cpu).unwrap();
    let flat = Tensor::zeros(&[6], &Device::Cpu).unwrap();
    let e = ops::embedding(&ids, &flat).unwrap_err().to_string();
    assert!(
        e.contains("embedding") && e.contains("[6]") && e.contains("[2]"),
        "{e}"
    );
    // f32 ids.
    let table = Tensor::zeros(&[3, 2], &Device::Cpu).unwrap();
    let e = ops::embedding(&table, &table).unwrap_err().to_string();
    assert!(
        e.contains("embedding") && e.contains("ids") && e.contains("U32"),
        "{e}"
    );
}
