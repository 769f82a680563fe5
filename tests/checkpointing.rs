//! Gradient checkpointing: `autograd::checkpoint` against finite differences, and a model with
//! recursive depth, adapters and fusion giving the same loss and gradients with its block
//! applications split into any number of checkpointed segments, on the cpu and on lavapipe.
//! (Its memory saving is measured in tests/memtest.rs, whose counters need a test binary alone.)

#[path = "kernels/common.rs"]
#[allow(dead_code)]
mod common;

use common::{assert_close, check_gradients, lavapipe, perturbed_crsm_model, rand_tensor};
use crsm::model::{Backbone, CrsmConfig};
use crsm::train::causal_lm_loss;
use crsm::train::random_step::random_tokens;
use crsm::{Device, Error, checkpoint, ops};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    d.extend(lavapipe());
    d
}

/// 2 layers x depth 2 (4 applications) with adapters and fusion, all perturbed from their
/// identity / even initialisation so each carries a gradient that matters.
fn crsm_model(device: &Device) -> Backbone {
    let mut c = CrsmConfig::new(29, 16, 2);
    c.state_size = 4;
    c.use_bias = true;
    c.tie_word_embeddings = false;
    c.crsm_fusion = true;
    c.crsm_recurrent_depth = 2;
    perturbed_crsm_model(c, device)
}

/// The loss and every parameter's gradient (in `named_parameters` order).
fn loss_and_gradients(model: &Backbone, device: &Device) -> (f32, Vec<(String, Vec<f32>)>) {
    let (inputs, targets) = random_tokens(29, 2, 7, 3, device).unwrap();
    let loss = causal_lm_loss(model, &inputs, &targets).unwrap();
    let grads = loss.backward().unwrap();
    let per_param = model
        .named_parameters()
        .into_iter()
        .map(|(name, p)| {
            let g = grads
                .get(p)
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            (name, g.to_vec_f32().unwrap())
        })
        .collect();
    (loss.scalar().unwrap(), per_param)
}

#[test]
fn checkpointed_segments_give_the_same_loss_and_gradients() {
    for device in devices() {
        let model = crsm_model(&device);
        assert_eq!(model.config.applications(), 4);
        let (loss, grads) = loss_and_gradients(&model, &device);
        // 1..4 segments, uneven splits (3) and more segments than applications (9, capped).
        for segments in [1, 2, 3, 4, 9] {
            let mut m = model.clone();
            m.set_checkpoint_segments(segments);
            let what = format!("{segments} segments on {}", device.name());
            let (l, g) = loss_and_gradients(&m, &device);
            assert_close(&format!("{what}: loss"), &[l], &[loss], 0.0, 1e-6);
            for ((name, got), (_, want)) in g.iter().zip(&grads) {
                assert_close(&format!("{what}: d/d {name}"), got, want, 1e-6, 1e-6);
            }
        }
    }
}

#[test]
fn checkpoint_matches_finite_differences() {
    // Two outputs of one segment, h = silu(x W^T) and h*h, summed outside it:
    // d/dx sum(r * (h + h^2)) = ((r * (1 + 2h)) * silu'(x W^T)) W, and likewise for W.
    let x = rand_tensor(1, &[3, 4], -1.0, 1.0, &Device::Cpu);
    let w = rand_tensor(2, &[5, 4], -1.0, 1.0, &Device::Cpu);
    check_gradients("checkpoint(silu(x W^T), h^2)", &[x, w], |v| {
        let w = v[1].clone();
        let outs = checkpoint(&[&v[0]], &[&v[1]], move |xs| {
            let h = ops::silu(&ops::linear(&xs[0], &w, None)?)?;
            let h2 = ops::mul(&h, &h)?;
            Ok(vec![h, h2])
        })
        .unwrap();
        ops::add(&outs[0], &outs[1]).unwrap()
    });
}

#[test]
fn a_variable_missing_from_params_is_an_error_not_a_lost_gradient() {
    let x = rand_tensor(1, &[3, 4], -1.0, 1.0, &Device::Cpu).as_variable();
    let w = rand_tensor(2, &[5, 4], -1.0, 1.0, &Device::Cpu).as_variable();
    let w_inside = w.clone();
    let out = checkpoint(&[&x], &[], move |xs| {
        Ok(vec![ops::linear(&xs[0], &w_inside, None)?])
    })
    .unwrap();
    let err = ops::sum(&out[0]).unwrap().backward().err();
    assert!(
        matches!(&err, Some(Error::Autograd(m)) if m.contains("not listed in its params")),
        "{err:?}"
    );
}
