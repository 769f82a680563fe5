//! A tiny CRSM with every part at random, for the planner's and injection's tests: the backbone's
//! SSM states weighted as a trained model's are, the dynamics not the identity, the broadcaster
//! proposing changes.

use std::sync::Arc;

use crsm::latent::checkpoint::{CriticPart, CrsmCheckpoint};
use crsm::latent::{
    Broadcaster, BroadcasterConfig, Critic, CriticConfig, Dynamics, DynamicsConfig, Gates,
    Standardizer,
};
use crsm::model::{Backbone, CrsmConfig};
use crsm::planner::latent_model::LatentModel;
use crsm::rng::Rng;
use crsm::{Device, Tensor};

/// Every part of a CRSM at random (the broadcaster's output maps too, so it proposes
/// changes), over a tiny backbone.
pub fn tiny_crsm(seed: u64) -> Arc<LatentModel> {
    let device = Device::Cpu;
    let mut backbone = Backbone::init(CrsmConfig::new(31, 12, 2), seed, &device).unwrap();
    // A fresh init's SSM states barely reach the logits (tiny dt, weak out_proj): give them
    // the weight a trained model's have, so injecting into them matters.
    for (i, block) in backbone.blocks.iter_mut().enumerate() {
        let e = block.dims.d_inner;
        block.dt_bias = Tensor::from_f32(vec![0.5 + 0.1 * i as f32; e], &[e], &device).unwrap();
        let out: Vec<f32> = block
            .out_proj
            .to_vec_f32()
            .unwrap()
            .iter()
            .map(|v| v * 6.0)
            .collect();
        block.out_proj = Tensor::from_f32(out, block.out_proj.shape(), &device).unwrap();
    }
    let c = backbone.config.clone();
    let (layers, d) = (c.applications(), c.hidden_size);
    let mut rng = Rng::new(seed + 1);
    let mut broadcaster = Broadcaster::init(
        BroadcasterConfig {
            layers,
            d_model: d,
            d_inner: c.d_inner(),
            d_state: c.state_size,
            rank: 4,
            channel_rank: 2,
        },
        seed,
        &device,
    )
    .unwrap();
    for l in &mut broadcaster.layers {
        for t in [&mut l.out_add, &mut l.out_scale] {
            *t = Tensor::from_f32(rng.normal_vec(t.elem_count(), 0.3), t.shape(), &device).unwrap();
        }
    }
    broadcaster.h_scale = vec![1.0; layers];
    broadcaster.delta_scale = vec![0.5; layers];
    // An untrained dynamics is the identity (it would predict no change to steer toward).
    let mut dynamics =
        Dynamics::init(DynamicsConfig { layers, d_model: d }, seed, &device).unwrap();
    dynamics.w_out = Tensor::from_f32(rng.normal_vec(d * d, 0.3), &[d, d], &device).unwrap();
    let critic = Critic::init(
        CriticConfig {
            layers,
            d_model: d,
            hidden: 4,
        },
        seed,
        &device,
    )
    .unwrap();
    let checkpoint = CrsmCheckpoint {
        standardizer: Some(Standardizer {
            layers,
            d_model: d,
            mean: vec![0.0; layers * d],
            std: vec![0.5; layers * d],
        }),
        dynamics: Some(dynamics),
        broadcaster: Some(broadcaster),
        critic: Some(CriticPart {
            critic,
            value_mean: -3.0,
            value_std: 0.5,
            certainty_mean: -3.0,
            certainty_std: 0.3,
            held_out_rmse: vec![0.5; layers],
        }),
        gates: Some(Gates::init(layers, &device).unwrap()),
        ..CrsmCheckpoint::backbone_only(backbone)
    };
    LatentModel::from_checkpoint(checkpoint).unwrap()
}
