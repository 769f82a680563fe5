//! The assembled CRSM checkpoint (`latent::checkpoint`): tiny randomly initialised parts saved and
//! loaded back tensor for tensor; strictness both ways (an extra tensor, a missing one, a wrong
//! shape, `crsm_stages` disagreeing with the file) as errors naming file and tensor or field;
//! `require` naming the stage and the commands; a plain HF Mamba folder as a backbone-only
//! checkpoint; and the injection gates' starting values.

#[path = "support/scratch.rs"]
mod scratch;
use scratch::Scratch;

use std::path::Path;

use crsm::io::{self, HostTensor, TensorMap};
use crsm::latent::checkpoint::{CRSM_FILE, CriticPart, CrsmCheckpoint, Stage};
use crsm::latent::{
    Broadcaster, BroadcasterConfig, Critic, CriticConfig, Dynamics, DynamicsConfig, Gates,
    Standardizer,
};
use crsm::model::{Backbone, CrsmConfig};
use crsm::rng::Rng;
use crsm::{Device, Tensor};

const HF_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mamba-tiny");

/// Replaces a tensor with random values of the same shape (so no part is at its init).
fn randomise(t: &mut Tensor, rng: &mut Rng, device: &Device) {
    *t = Tensor::from_f32(rng.normal_vec(t.elem_count(), 0.5), t.shape(), device)
        .unwrap()
        .as_variable();
}

/// A checkpoint with every stage: backbone 2 layers of width 8, critic hidden 3.
fn every_part(device: &Device) -> CrsmCheckpoint {
    let backbone = Backbone::init(CrsmConfig::new(37, 8, 2), 3, device).unwrap();
    let (layers, d) = (2, 8);
    let mut rng = Rng::new(7);
    let mut dynamics = Dynamics::init(DynamicsConfig { layers, d_model: d }, 1, device).unwrap();
    for p in dynamics.parameters_mut() {
        randomise(p, &mut rng, device);
    }
    let config = CriticConfig {
        layers,
        d_model: d,
        hidden: 3,
    };
    let mut critic = Critic::init(config, 2, device).unwrap();
    for p in critic.parameters_mut() {
        randomise(p, &mut rng, device);
    }
    let mut gates = Gates::init(layers, device).unwrap();
    for p in gates.parameters_mut() {
        randomise(p, &mut rng, device);
    }
    let c = backbone.config.clone();
    let mut broadcaster = Broadcaster::init(
        BroadcasterConfig {
            layers,
            d_model: d,
            d_inner: c.d_inner(),
            d_state: c.state_size,
            rank: 3,
            channel_rank: 2,
        },
        4,
        device,
    )
    .unwrap();
    for p in broadcaster.parameters_mut() {
        randomise(p, &mut rng, device);
    }
    broadcaster.h_scale = vec![0.5, 2.0];
    broadcaster.delta_scale = vec![0.1, 0.3];
    CrsmCheckpoint {
        standardizer: Some(Standardizer {
            layers,
            d_model: d,
            mean: rng.normal_vec(layers * d, 1.0),
            std: rng
                .uniform_vec(layers * d, 1.0)
                .iter()
                .map(|x| 1.5 + x)
                .collect(),
        }),
        dynamics: Some(dynamics),
        broadcaster: Some(broadcaster),
        critic: Some(CriticPart {
            critic,
            value_mean: -2.5,
            value_std: 0.75,
            certainty_mean: -3.0,
            certainty_std: 0.5,
            held_out_rmse: vec![0.9, 0.8],
        }),
        gates: Some(gates),
        ..CrsmCheckpoint::backbone_only(backbone)
    }
}

fn err_text(dir: &Path) -> String {
    match CrsmCheckpoint::load(dir, &Device::Cpu) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

/// Rewrites `crsm.safetensors` in `dir` after `edit`.
fn edit_crsm_file(dir: &Path, edit: impl FnOnce(&mut TensorMap)) {
    let path = dir.join(CRSM_FILE);
    let mut map = io::load_safetensors_file(&path).unwrap();
    edit(&mut map);
    io::save_safetensors(&path, &map).unwrap();
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, v.to_string()).unwrap();
}

#[test]
fn an_assembled_checkpoint_round_trips_tensor_for_tensor() {
    let dir = Scratch::new("ckpt", "round-trip");
    let device = Device::Cpu;
    let saved = every_part(&device);
    saved.save(&dir).unwrap();
    let loaded = CrsmCheckpoint::load(&dir, &device).unwrap();
    assert_eq!(loaded.stages(), Stage::ALL.to_vec());
    assert_eq!(
        loaded.crsm_tensors().unwrap(),
        saved.crsm_tensors().unwrap()
    );
    let host = |b: &Backbone| -> Vec<(String, Vec<f32>)> {
        b.named_parameters()
            .into_iter()
            .map(|(n, t)| (n, t.to_vec_f32().unwrap()))
            .collect()
    };
    assert_eq!(host(&loaded.backbone), host(&saved.backbone));
    // Saved again from what was loaded: the same bytes (nothing drifts through a round trip).
    let again = Scratch::new("ckpt", "round-trip-again");
    loaded.save(&again).unwrap();
    for f in ["config.json", "model.safetensors", CRSM_FILE] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["crsm_stages"],
        serde_json::json!(["backbone", "dynamics", "broadcaster", "critic", "gates"])
    );
    assert_eq!(config["crsm_critic_hidden"], 3);
    // The HF file holds the backbone alone: what transformers reads stays pure.
    let hf = io::load_safetensors_file(&dir.join("model.safetensors")).unwrap();
    assert!(
        hf.keys().all(|k| !k.starts_with("crsm.")),
        "{:?}",
        hf.keys()
    );
    // The backbone loads from the folder on its own, as any HF folder.
    Backbone::load(&dir, &device).unwrap();
}

#[test]
fn an_extra_a_missing_or_a_misshapen_tensor_is_an_error_naming_it() {
    let device = Device::Cpu;
    let dir = Scratch::new("ckpt", "strict");
    every_part(&device).save(&dir).unwrap();

    edit_crsm_file(&dir, |m| {
        m.insert(
            "crsm.planner.extra".into(),
            HostTensor::new(vec![1], vec![0.0]).unwrap(),
        );
    });
    let e = err_text(&dir);
    assert!(
        e.contains(CRSM_FILE) && e.contains("crsm.planner.extra") && e.contains("unexpected"),
        "{e}"
    );

    every_part(&device).save(&dir).unwrap();
    edit_crsm_file(&dir, |m| {
        m.remove("crsm.dynamics.gru.weight_hh");
    });
    let e = err_text(&dir);
    assert!(
        e.contains(CRSM_FILE) && e.contains("crsm.dynamics.gru.weight_hh") && e.contains("missing"),
        "{e}"
    );

    every_part(&device).save(&dir).unwrap();
    edit_crsm_file(&dir, |m| {
        m.insert(
            "crsm.gates.bias".into(),
            HostTensor::new(vec![3], vec![0.0; 3]).unwrap(),
        );
    });
    let e = err_text(&dir);
    assert!(
        e.contains("crsm.gates.bias") && e.contains("[3]") && e.contains("[2]"),
        "{e}"
    );

    // The critic's hidden width comes from config.json: a wrong one is a shape error there.
    every_part(&device).save(&dir).unwrap();
    edit_config(&dir, |c| c["crsm_critic_hidden"] = 4.into());
    let e = err_text(&dir);
    assert!(
        e.contains("crsm.critic.0.w1") && e.contains("[4, 8]"),
        "{e}"
    );
}

#[test]
fn crsm_stages_must_agree_with_the_tensors() {
    let device = Device::Cpu;
    let dir = Scratch::new("ckpt", "stages");
    every_part(&device).save(&dir).unwrap();
    // The critic's tensors are there but the config no longer lists it.
    edit_config(&dir, |c| {
        c["crsm_stages"] = serde_json::json!(["backbone", "dynamics", "broadcaster", "gates"]);
        c.as_object_mut().unwrap().remove("crsm_critic_hidden");
    });
    let e = err_text(&dir);
    assert!(
        e.contains("crsm.critic.") && e.contains("crsm_stages"),
        "{e}"
    );

    every_part(&device).save(&dir).unwrap();
    edit_config(&dir, |c| {
        c["crsm_stages"] = serde_json::json!(["backbone", "planner"])
    });
    let e = err_text(&dir);
    assert!(e.contains("crsm_stages") && e.contains("planner"), "{e}");

    every_part(&device).save(&dir).unwrap();
    edit_config(&dir, |c| {
        c.as_object_mut().unwrap().remove("crsm_critic_hidden");
    });
    let e = err_text(&dir);
    assert!(e.contains("crsm_critic_hidden"), "{e}");

    every_part(&device).save(&dir).unwrap();
    std::fs::remove_file(dir.join(CRSM_FILE)).unwrap();
    let e = err_text(&dir);
    assert!(e.contains("crsm_stages") && e.contains(CRSM_FILE), "{e}");
}

#[test]
fn require_names_the_missing_stage_and_the_commands_that_make_it() {
    let device = Device::Cpu;
    let dir = Scratch::new("ckpt", "require");
    let mut part = every_part(&device);
    part.critic = None;
    part.broadcaster = None;
    part.save(&dir).unwrap();
    let loaded = CrsmCheckpoint::load(&dir, &device).unwrap();
    assert_eq!(
        loaded.stages(),
        vec![Stage::Backbone, Stage::Dynamics, Stage::Gates]
    );
    loaded.require(Stage::Dynamics).unwrap();
    let e = loaded.require(Stage::Critic).unwrap_err().to_string();
    assert!(
        e.contains("no critic")
            && e.contains("crsm-train critic --config")
            && e.contains("crsm-train assemble --config")
            && e.contains("config.json"),
        "{e}"
    );
    let e = loaded.require(Stage::Broadcaster).unwrap_err().to_string();
    assert!(
        e.contains("no broadcaster") && e.contains("crsm-train distill"),
        "{e}"
    );
}

#[test]
fn a_plain_hf_mamba_folder_is_a_backbone_only_checkpoint() {
    let device = Device::Cpu;
    let ckpt = CrsmCheckpoint::load(Path::new(HF_FIXTURE), &device).unwrap();
    assert_eq!(ckpt.stages(), vec![Stage::Backbone]);
    let e = ckpt.require(Stage::Dynamics).unwrap_err().to_string();
    assert!(
        e.contains("no dynamics") && e.contains("crsm-train distill --config"),
        "{e}"
    );
    // Saved by crsm it stays a plain HF folder: no crsm file, no crsm_* keys.
    let dir = Scratch::new("ckpt", "hf");
    ckpt.save(&dir).unwrap();
    assert!(!dir.join(CRSM_FILE).exists());
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(!config.contains("crsm_stages"), "{config}");
    // A stray crsm file beside a backbone-only config is refused, naming it.
    std::fs::write(dir.join(CRSM_FILE), b"").unwrap();
    let e = err_text(&dir);
    assert!(e.contains(CRSM_FILE), "{e}");
}

#[test]
fn gates_start_nearly_closed_and_open_with_confidence() {
    let gates = Gates::init(3, &Device::Cpu).unwrap();
    let a = gates.alphas(&[0.0, 0.5, 1.0], 0.5).unwrap();
    // rate * sigmoid(8 c - 4): 0.018, 0.5, 0.982 of the rate.
    let want = [0.5 * 0.017_986, 0.25, 0.5 * 0.982_014];
    for (got, want) in a.iter().zip(want) {
        assert!((got - want).abs() < 1e-5, "{a:?}");
    }
    assert!(gates.alphas(&[0.0; 2], 1.0).is_err());
}
