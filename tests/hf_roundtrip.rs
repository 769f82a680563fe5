//! A checkpoint crsm saved, loaded by transformers: tests/fixtures/crsm-saved is an assembled
//! CRSM folder written by crsm (`write_the_crsm_saved_fixture` below, run by hand with
//! `--ignored`), and `reference.safetensors` there holds the logits and hidden states that
//! transformers' `MambaForCausalLM.from_pretrained` computed from it, with no weight missing or
//! unexpected (tests/fixtures/make_crsm_saved_fixture.py; its README names the versions). Here
//! crsm loads the same folder strictly and must agree to 1e-4. CI never runs Python.

#[path = "support/scratch.rs"]
#[allow(dead_code)]
mod scratch;

#[path = "kernels/common.rs"]
#[allow(dead_code)]
mod common;

use std::path::Path;

use common::assert_close;
use crsm::io;
use crsm::latent::checkpoint::{CrsmCheckpoint, Stage};
use crsm::latent::{Dynamics, DynamicsConfig, Gates, Standardizer};
use crsm::model::{Backbone, CrsmConfig};
use crsm::rng::Rng;
use crsm::{Device, Tensor};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crsm-saved");
/// f32 against transformers' f32, as for the mamba-tiny fixture (tests/model.rs).
const LOGIT_TOL: f32 = 1e-4;

/// `base + spread * N(0, 1)` for every element of `t`.
fn perturb(t: &mut Tensor, base: f32, spread: f32, rng: &mut Rng, device: &Device) {
    let old = if base.is_nan() {
        t.to_vec_f32().unwrap()
    } else {
        vec![base; t.elem_count()]
    };
    let noise = rng.normal_vec(t.elem_count(), spread);
    let new: Vec<f32> = old.iter().zip(noise).map(|(a, n)| a + n).collect();
    *t = Tensor::from_f32(new, t.shape(), device)
        .unwrap()
        .as_variable();
}

/// A tiny backbone with non-default shapes (vocab 53, D 20, N 6, K 3, dt_rank 3, 2 layers, an
/// untied head), perturbed as the mamba-tiny fixture is so no path is trivial; plus the parts of
/// an assembly that do not need training (standardiser, dynamics, gates), so transformers is
/// shown the whole folder an assembly writes.
fn fixture_checkpoint(device: &Device) -> CrsmCheckpoint {
    let mut config = CrsmConfig::new(53, 20, 2);
    config.state_size = 6;
    config.conv_kernel = 3;
    config.time_step_rank = crsm::model::TimeStepRank::Fixed(3);
    config.tie_word_embeddings = false;
    let mut b = Backbone::init(config, 11, device).unwrap();
    let mut rng = Rng::new(20260611);
    let keep = f32::NAN; // perturb around the current value
    for block in &mut b.blocks {
        perturb(&mut block.a_log, keep, 0.3, &mut rng, device);
        perturb(&mut block.d, keep, 0.5, &mut rng, device);
        perturb(&mut block.dt_bias, keep, 0.5, &mut rng, device);
        perturb(&mut block.dt_proj, keep, 0.2, &mut rng, device);
        perturb(
            block.conv_bias.as_mut().unwrap(),
            0.0,
            0.2,
            &mut rng,
            device,
        );
        perturb(&mut block.conv_weight, keep, 0.1, &mut rng, device);
        perturb(&mut block.norm, 1.0, 0.2, &mut rng, device);
        perturb(&mut block.in_proj, keep, 0.1, &mut rng, device);
        perturb(&mut block.out_proj, keep, 0.3, &mut rng, device);
    }
    perturb(&mut b.norm_f, 1.0, 0.2, &mut rng, device);
    perturb(&mut b.embeddings, 0.0, 0.3, &mut rng, device);
    perturb(b.lm_head.as_mut().unwrap(), 0.0, 0.3, &mut rng, device);
    let (layers, d) = (2, 20);
    CrsmCheckpoint {
        standardizer: Some(Standardizer {
            layers,
            d_model: d,
            mean: rng.normal_vec(layers * d, 0.1),
            std: vec![1.0; layers * d],
        }),
        dynamics: Some(Dynamics::init(DynamicsConfig { layers, d_model: d }, 3, device).unwrap()),
        gates: Some(Gates::init(layers, device).unwrap()),
        ..CrsmCheckpoint::backbone_only(b)
    }
}

/// Writes tests/fixtures/crsm-saved (then run make_crsm_saved_fixture.py for the reference).
#[test]
#[ignore = "writes the committed fixture; run by hand before make_crsm_saved_fixture.py"]
fn write_the_crsm_saved_fixture() {
    let dir = Path::new(FIXTURE);
    std::fs::create_dir_all(dir).unwrap();
    fixture_checkpoint(&Device::Cpu).save(dir).unwrap();
}

#[test]
fn the_fixture_is_what_crsm_saves() {
    // Saved again now, the folder's files are byte for byte the committed ones: the fixture
    // transformers read is what crsm writes today.
    let dir = scratch::Scratch::new("hf-roundtrip", "resave");
    fixture_checkpoint(&Device::Cpu).save(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "crsm.safetensors"] {
        assert!(
            std::fs::read(dir.join(f)).unwrap()
                == std::fs::read(Path::new(FIXTURE).join(f)).unwrap(),
            "{f} differs from the committed fixture: regenerate it (see tests/fixtures/crsm-saved/README.md)"
        );
    }
}

#[test]
fn logits_of_a_checkpoint_crsm_saved_match_transformers() {
    let device = Device::Cpu;
    let ckpt = CrsmCheckpoint::load(Path::new(FIXTURE), &device).unwrap();
    assert_eq!(
        ckpt.stages(),
        vec![Stage::Backbone, Stage::Dynamics, Stage::Gates]
    );
    let r = io::load_safetensors_file(&Path::new(FIXTURE).join("reference.safetensors")).unwrap();
    let ids_t = &r["input_ids"];
    let ids: Vec<u32> = ids_t.data.iter().map(|&v| v as u32).collect();
    let ids = Tensor::from_u32(ids, &ids_t.shape, &device).unwrap();
    let _off = crsm::no_grad();
    let logits = ckpt.backbone.forward(&ids).unwrap();
    assert_eq!(logits.shape(), r["logits"].shape.as_slice());
    assert_close(
        "logits vs transformers",
        &logits.to_vec_f32().unwrap(),
        &r["logits"].data,
        0.0,
        LOGIT_TOL,
    );
    // transformers' hidden_states[i]: the residual stream after layer i.
    for (i, h) in ckpt.backbone.residuals(&ids).unwrap().iter().enumerate() {
        let name = format!("hidden_states.{i}");
        assert_close(
            &name,
            &h.to_vec_f32().unwrap(),
            &r[&name].data,
            0.0,
            LOGIT_TOL,
        );
    }
    // And the backbone alone loads from it as from any HF folder.
    Backbone::load(Path::new(FIXTURE), &device).unwrap();
}
