//! log_softmax and cross_entropy: wgpu against cpu (forward and gradients) up to a 50280-token
//! vocabulary, finite differences, a hand-computed loss, ignore_index, and bad input.
//!
//! Derivatives: log_softmax: dL/dx_k = g_k - softmax_k sum_j g_j.
//! cross_entropy (mean over the N rows not ignored): dL/dlogits[m] = g (softmax(logits[m]) -
//! onehot(target_m)) / N, zero for ignored rows.

use crate::common::*;
use crsm::{DType, Device, Error, Tensor, ops};

fn targets(seed: u64, m: usize, v: usize) -> Tensor {
    let ids = rand_vec(seed, m, 0.0, v as f32)
        .into_iter()
        .map(|t| (t as u32).min(v as u32 - 1))
        .collect();
    Tensor::from_u32(ids, &[m], &Device::Cpu).unwrap()
}

/// Targets with every third row set to `ignore`.
fn targets_with_ignored(seed: u64, m: usize, v: usize, ignore: u32) -> Tensor {
    let mut ids = targets(seed, m, v).to_vec_u32().unwrap();
    for t in ids.iter_mut().step_by(3) {
        *t = ignore;
    }
    Tensor::from_u32(ids, &[m], &Device::Cpu).unwrap()
}

// ---- log_softmax ---------------------------------------------------------------------------------

#[test]
fn log_softmax_matches_cpu_for_odd_and_vocabulary_widths() {
    let shapes: &[&[usize]] = &[&[1], &[3, 7], &[2, 3, 33], &[2, 1000], &[2, 50280]];
    for (s, shape) in shapes.iter().enumerate() {
        let x = rand_tensor(s as u64, shape, -8.0, 8.0, &Device::Cpu);
        check_parity(
            &format!("log_softmax {shape:?}"),
            &[x],
            |v| ops::log_softmax(&v[0]).unwrap(),
            1e-5,
            2e-5,
        );
    }
}

#[test]
fn log_softmax_gradients_match_finite_differences() {
    for (s, shape) in [&[1usize, 1][..], &[3, 7], &[2, 2, 5]]
        .into_iter()
        .enumerate()
    {
        let x = rand_tensor(10 + s as u64, shape, -3.0, 3.0, &Device::Cpu);
        check_gradients(&format!("log_softmax {shape:?}"), &[x], |v| {
            ops::log_softmax(&v[0]).unwrap()
        });
    }
}

#[test]
fn log_softmax_is_stable_for_large_logits() {
    // exp(1000) overflows f32; the max-subtracted form gives log(1/(1+e)), log(e/(1+e)).
    let want = [
        -(1.0f32 + 1f32.exp()).ln(),
        1.0 - (1.0f32 + 1f32.exp()).ln(),
    ];
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for d in &devices {
        let x = Tensor::from_f32(vec![1000.0, 1001.0, -1000.0, -999.0], &[2, 2], d).unwrap();
        let y = ops::log_softmax(&x).unwrap().to_vec_f32().unwrap();
        assert_close(
            &format!("log_softmax on {}", d.name()),
            &y,
            &[want[0], want[1], want[0], want[1]],
            1e-5,
            1e-6,
        );
    }
}

// ---- cross_entropy -------------------------------------------------------------------------------

#[test]
fn cross_entropy_matches_hand_computed_value() {
    // Row 0: logits [1, 2, 3], target 2: log(e + e^2 + e^3) - 3 = 0.4076059644.
    // Row 1: logits [1, 1, 1], target 0: log 3 = 1.0986122887. Mean: 0.7531091265.
    // Gradient (g = 1): (softmax - onehot) / 2 = [0.0450, 0.1224, -0.1674] and [1/6, 1/6, 1/6] - [1/2, 0, 0].
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for d in &devices {
        let logits = Tensor::from_f32(vec![1.0, 2.0, 3.0, 1.0, 1.0, 1.0], &[2, 3], d)
            .unwrap()
            .as_variable();
        let t = Tensor::from_u32(vec![2, 0], &[2], d).unwrap();
        let loss = ops::cross_entropy(&logits, &t, None).unwrap();
        assert_eq!(loss.shape(), [1]);
        assert!(
            (loss.scalar().unwrap() - 0.753_109_1).abs() < 1e-6,
            "{} on {}",
            loss.scalar().unwrap(),
            d.name()
        );
        let g = loss
            .backward()
            .unwrap()
            .get(&logits)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let z = 1f32.exp() + 2f32.exp() + 3f32.exp();
        let want = [
            1f32.exp() / z / 2.0,
            2f32.exp() / z / 2.0,
            (3f32.exp() / z - 1.0) / 2.0,
            1.0 / 6.0 - 0.5,
            1.0 / 6.0,
            1.0 / 6.0,
        ];
        assert_close(
            &format!("cross_entropy grad on {}", d.name()),
            &g,
            &want,
            1e-5,
            1e-7,
        );
    }
}

#[test]
fn cross_entropy_matches_cpu_with_and_without_ignore_index() {
    // (M, V): V = 1, V not a multiple of 256, and the GPT-NeoX vocabulary of 50280.
    let cases: &[(usize, usize)] = &[(1, 1), (3, 7), (5, 1000), (4, 50280)];
    for (s, &(m, v)) in cases.iter().enumerate() {
        let logits = rand_tensor(20 + s as u64, &[m, v], -6.0, 6.0, &Device::Cpu);
        let t = targets(30 + s as u64, m, v);
        let ce = |ignore: Option<u32>| {
            move |x: &[Tensor]| ops::cross_entropy(&x[0], &x[1], ignore).unwrap()
        };
        check_parity(
            &format!("cross_entropy {m}x{v}"),
            &[logits.clone(), t.clone()],
            ce(None),
            1e-5,
            1e-6,
        );
        // An ignore index that no row uses changes nothing; then one that some rows use.
        check_parity(
            &format!("cross_entropy {m}x{v} ignore unused"),
            &[logits.clone(), t.clone()],
            ce(Some(u32::MAX)),
            1e-5,
            1e-6,
        );
        let ti = targets_with_ignored(40 + s as u64, m, v, 0);
        check_parity(
            &format!("cross_entropy {m}x{v} ignore 0"),
            &[logits, ti],
            ce(Some(0)),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn cross_entropy_gradients_match_finite_differences() {
    for (s, &(m, v)) in [(1usize, 1usize), (3, 7), (4, 5), (2, 40)]
        .iter()
        .enumerate()
    {
        let logits = rand_tensor(50 + s as u64, &[m, v], -3.0, 3.0, &Device::Cpu);
        let t = targets(60 + s as u64, m, v);
        check_gradients(
            &format!("cross_entropy {m}x{v}"),
            std::slice::from_ref(&logits),
            |x| ops::cross_entropy(&x[0], &t, None).unwrap(),
        );
        let ti = targets_with_ignored(70 + s as u64, m, v, 100);
        check_gradients(&format!("cross_entropy {m}x{v} ignore"), &[logits], |x| {
            ops::cross_entropy(&x[0], &ti, Some(100)).unwrap()
        });
    }
}

#[test]
fn cross_entropy_ignores_rows_like_dropping_them() {
    // Rows 0 and 3 ignored == the loss over rows 1, 2 only.
    let logits = rand_tensor(80, &[4, 9], -2.0, 2.0, &Device::Cpu);
    let lv = logits.to_vec_f32().unwrap();
    let t = Tensor::from_u32(vec![7, 3, 8, 7], &[4], &Device::Cpu).unwrap();
    let kept = Tensor::from_f32(lv[9..27].to_vec(), &[2, 9], &Device::Cpu).unwrap();
    let kt = Tensor::from_u32(vec![3, 8], &[2], &Device::Cpu).unwrap();
    let want = ops::cross_entropy(&kept, &kt, None)
        .unwrap()
        .scalar()
        .unwrap();
    let got = ops::cross_entropy(&logits, &t, Some(7))
        .unwrap()
        .scalar()
        .unwrap();
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
}

#[test]
fn cross_entropy_is_zero_with_zero_gradient_when_every_row_is_ignored() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for d in &devices {
        for (m, v) in [(3usize, 7usize), (2, 1000)] {
            let logits = rand_tensor(90, &[m, v], -2.0, 2.0, d).as_variable();
            let t = Tensor::from_u32(vec![5; m], &[m], d).unwrap();
            let loss = ops::cross_entropy(&logits, &t, Some(5)).unwrap();
            assert_eq!(loss.scalar().unwrap(), 0.0, "{m}x{v} on {}", d.name());
            let g = loss
                .backward()
                .unwrap()
                .get(&logits)
                .unwrap()
                .to_vec_f32()
                .unwrap();
            assert!(
                g.iter().all(|&x| x == 0.0),
                "{m}x{v} on {}: nonzero gradient",
                d.name()
            );
        }
        // No rows at all is the same case.
        let empty = Tensor::zeros(&[0, 4], d).unwrap();
        let loss =
            ops::cross_entropy(&empty, &Tensor::from_u32(vec![], &[0], d).unwrap(), None).unwrap();
        assert_eq!(loss.scalar().unwrap(), 0.0, "empty batch on {}", d.name());
    }
}

#[test]
fn cross_entropy_rejects_bad_input() {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpus());
    for d in &devices {
        let logits = Tensor::zeros(&[3, 7], d).unwrap();
        // Out of range: names the op, the id and its position.
        let t = Tensor::from_u32(vec![1, 7, 2], &[3], d).unwrap();
        let err = ops::cross_entropy(&logits, &t, None).unwrap_err();
        assert!(
            matches!(
                err,
                Error::IdOutOfRange {
                    op: "cross_entropy",
                    id: 7,
                    position: 1,
                    limit: 7
                }
            ),
            "{err}"
        );
        let e = err.to_string();
        assert!(
            e.contains("cross_entropy") && e.contains("position 1"),
            "{e}"
        );
        // The same id is fine when it is the ignore index.
        assert!(ops::cross_entropy(&logits, &t, Some(7)).is_ok());
        // Targets must be u32.
        let e = ops::cross_entropy(&logits, &Tensor::zeros(&[3], d).unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cross_entropy")
                && e.contains("targets")
                && e.contains(&format!("{:?}", DType::U32)),
            "{e}"
        );
        // Shapes.
        let e = ops::cross_entropy(
            &logits,
            &Tensor::from_u32(vec![0; 4], &[4], d).unwrap(),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cross_entropy") && e.contains("[4]") && e.contains("[3, 7]"),
            "{e}"
        );
        let e = ops::cross_entropy(&Tensor::zeros(&[1, 3, 7], d).unwrap(), &t, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cross_entropy") && e.contains("[1, 3, 7]"),
            "{e}"
        );
        let e = ops::cross_entropy(&Tensor::zeros(&[3, 0], d).unwrap(), &t, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cross_entropy") && e.contains("[3, 0]"), "{e}");
    }
    let e = ops::log_softmax(&Tensor::zeros(&[2, 0], &Device::Cpu).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("log_softmax") && e.contains("[2, 0]"), "{e}");
}
