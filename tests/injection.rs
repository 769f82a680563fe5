//! Gated injection into the SSM states: the next logits move by exactly what the blend computed
//! by hand gives; alphas of 0 (or under the floor) leave them bit for bit; norms are reported.

use crsm::model::{Backbone, CrsmConfig};
use crsm::planner::injection::inject;
use crsm::{Device, Tensor};

fn model() -> Backbone {
    Backbone::init(CrsmConfig::new(23, 8, 2), 5, &Device::Cpu).unwrap()
}

fn prompt_state(m: &Backbone) -> crsm::state::State {
    let mut s = m.new_state(1).unwrap();
    let ids = Tensor::from_u32(vec![1, 5, 7, 3], &[1, 4], &Device::Cpu).unwrap();
    m.prefill(&ids, &mut s).unwrap();
    s
}

fn next_logits(m: &Backbone, mut s: crsm::state::State) -> Vec<f32> {
    let id = Tensor::from_u32(vec![9], &[1], &Device::Cpu).unwrap();
    m.step(&id, &mut s).unwrap().to_vec_f32().unwrap()
}

fn targets(s: &crsm::state::State) -> Vec<Vec<f32>> {
    s.layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.ssm
                .to_vec_f32()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(j, v)| v + 3.0 * ((i * 31 + j) as f32).sin())
                .collect()
        })
        .collect()
}

#[test]
fn injection_moves_the_next_logits_exactly_as_the_blend_by_hand() {
    let m = model();
    let base = prompt_state(&m);
    let t = targets(&base);
    let alphas = [0.3, 0.05];
    let mut injected = base.snapshot().unwrap();
    let report = inject(&mut injected, &t, &alphas, 1e-3).unwrap();
    assert_eq!(report.alphas, alphas.to_vec());
    // By hand: h <- (1 - a) h + a t, layer by layer.
    let mut by_hand = base.snapshot().unwrap();
    for ((layer, target), a) in by_hand.layers.iter_mut().zip(&t).zip(alphas) {
        let h = layer.ssm.to_vec_f32().unwrap();
        let blended: Vec<f32> = h
            .iter()
            .zip(target)
            .map(|(x, y)| (1.0 - a) * x + a * y)
            .collect();
        layer.ssm = Tensor::from_f32(blended, layer.ssm.shape(), &Device::Cpu).unwrap();
    }
    let (plain, got, want) = (
        next_logits(&m, base.snapshot().unwrap()),
        next_logits(&m, injected),
        next_logits(&m, by_hand),
    );
    assert_eq!(
        got, want,
        "the same blend gives the same logits, bit for bit"
    );
    let moved = plain
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        moved > 1e-3,
        "injection changes the next logits (max change {moved})"
    );
    for (b, a) in report.norm_before.iter().zip(&report.norm_after) {
        assert!(b.is_finite() && a.is_finite() && (a - b).abs() > 0.0);
    }
}

#[test]
fn zero_alphas_and_alphas_under_the_floor_leave_the_logits_bit_identical() {
    let m = model();
    let base = prompt_state(&m);
    let t = targets(&base);
    let plain = next_logits(&m, base.snapshot().unwrap());
    for alphas in [[0.0, 0.0], [5e-4, 9e-4]] {
        let mut s = base.snapshot().unwrap();
        let report = inject(&mut s, &t, &alphas, 1e-3).unwrap();
        assert_eq!(report.alphas, vec![0.0, 0.0]);
        assert_eq!(report.norm_before, report.norm_after);
        assert_eq!(next_logits(&m, s), plain);
    }
}

#[test]
fn a_target_of_the_wrong_size_is_an_error_naming_both() {
    let m = model();
    let mut s = prompt_state(&m);
    let e = inject(&mut s, &[vec![0.0; 3], vec![0.0; 3]], &[0.5, 0.5], 0.0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("3 values"), "{e}");
}
