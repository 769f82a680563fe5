//! The delta broadcaster and the state pairs it learns from: sizes and budget at mamba-130m's
//! shape, gradients, the pairs as the backbone's own steps, and the held-out report's measures.

#[path = "kernels/common.rs"]
#[allow(dead_code)]
mod common;

use common::{check_gradients, rand_tensor, rand_vec};
use crsm::latent::broadcast_fit::{broadcast_fit, delta_r2};
use crsm::latent::broadcaster::BroadcastLayer;
use crsm::latent::state_pairs::{PairPlan, REPLAY_STEPS, StatePairs, collect_pairs, positions};
use crsm::latent::{Broadcaster, BroadcasterConfig, LatentTrace, Standardizer};
use crsm::model::{Backbone, CrsmConfig};
use crsm::{Device, Tensor};

fn config(layers: usize, d: usize, e: usize, n: usize) -> BroadcasterConfig {
    BroadcasterConfig {
        layers,
        d_model: d,
        d_inner: e,
        d_state: n,
        rank: 4,
        channel_rank: 3,
    }
}

/// A broadcaster whose output maps are not zero, so every parameter moves the proposal.
fn perturbed(c: BroadcasterConfig, seed: u64, dev: &Device) -> Broadcaster {
    let mut b = Broadcaster::init(c, seed, dev).unwrap();
    for (i, l) in b.layers.iter_mut().enumerate() {
        let s = seed * 100 + i as u64 * 10;
        l.out_add = rand_tensor(s + 1, &[c.d_inner, c.channel_rank], -0.8, 0.8, dev).as_variable();
        l.out_scale =
            rand_tensor(s + 2, &[c.d_inner, c.channel_rank], -0.8, 0.8, dev).as_variable();
    }
    b
}

#[test]
fn the_broadcaster_fits_the_latent_budget_at_mamba_130m() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mamba-130m.json");
    let c = crsm::train::RunConfig::from_json_file(&path).unwrap().model;
    let (layers, d, e, n) = (c.applications(), c.hidden_size, c.d_inner(), c.state_size);
    assert_eq!((layers, d, e, n), (24, 768, 1536, 16));
    let (r, k) = (32, 8);
    let b = Broadcaster::init(
        BroadcasterConfig {
            layers,
            d_model: d,
            d_inner: e,
            d_state: n,
            rank: r,
            channel_rank: k,
        },
        0,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        b.parameter_count(),
        layers * (r * d + 2 * n * k * r + 2 * e * k)
    );
    // A full E N x D map per layer would be the size of the model: this one is 1.1%.
    assert!(e * n * d > 18_000_000);
    let dynamics = 7 * d * d + 6 * d + 3 * layers * d;
    let critic = layers * (32 * d + 32 + 32 + 1 + 32 + 1);
    let gates = 2 * layers;
    let all = (b.parameter_count() + dynamics + critic + gates) as f64 / 129_135_360.0;
    assert!(
        all < 0.05,
        "latent machinery = {:.2}% of mamba-130m",
        all * 100.0
    );
}

#[test]
fn an_untrained_broadcaster_proposes_no_change() {
    let dev = Device::Cpu;
    let c = config(2, 6, 5, 3);
    let b = Broadcaster::init(c, 1, &dev).unwrap();
    let h = rand_vec(2, 4 * 2 * 5 * 3, -2.0, 2.0);
    let dz = rand_vec(3, 4 * 2 * 6, -2.0, 2.0);
    assert_eq!(b.propose(&h, &dz, &dev).unwrap(), h);
}

#[test]
fn the_broadcaster_matches_finite_differences_through_both_terms() {
    let dev = Device::Cpu;
    let c = config(1, 5, 4, 3);
    let base = perturbed(c, 3, &dev);
    let b = 2;
    let dz = rand_tensor(7, &[b, 5], -1.5, 1.5, &dev);
    let h = rand_tensor(8, &[b * 3, 4], -1.5, 1.5, &dev);
    let l = &base.layers[0];
    let inputs = vec![
        l.input.detach(),
        l.mix_add.detach(),
        l.mix_scale.detach(),
        l.out_add.detach(),
        l.out_scale.detach(),
        dz,
        h,
    ];
    let rebuild = |v: &[Tensor]| Broadcaster {
        layers: vec![BroadcastLayer {
            input: v[0].clone(),
            mix_add: v[1].clone(),
            mix_scale: v[2].clone(),
            out_add: v[3].clone(),
            out_scale: v[4].clone(),
        }],
        ..base.clone()
    };
    check_gradients("Broadcaster::layer_delta", &inputs, |v| {
        rebuild(v).layer_delta(0, &v[5], &v[6]).unwrap()
    });
}

#[test]
fn the_pair_loss_matches_finite_differences_over_every_layer() {
    let dev = Device::Cpu;
    let (layers, d, e, n) = (2, 4, 3, 2);
    let base = perturbed(config(layers, d, e, n), 5, &dev);
    let count = 3;
    let pairs = StatePairs {
        count,
        layers,
        d_model: d,
        d_inner: e,
        d_state: n,
        window: vec![0; count],
        position: vec![1; count],
        alt_token: vec![0; count],
        z: rand_vec(10, count * layers * d, -1.0, 1.0),
        z_alt: rand_vec(11, count * layers * d, -1.0, 1.0),
        h: rand_vec(12, count * layers * e * n, -1.0, 1.0),
        h_alt: rand_vec(13, count * layers * e * n, -2.0, 2.0),
    };
    let st = Standardizer {
        layers,
        d_model: d,
        mean: vec![0.0; layers * d],
        std: rand_vec(14, layers * d, 0.5, 1.5),
    };
    let inputs: Vec<Tensor> = base
        .named_parameters()
        .iter()
        .map(|(_, p)| p.detach())
        .collect();
    let rebuild = |v: &[Tensor]| Broadcaster {
        layers: v
            .chunks(5)
            .map(|p| BroadcastLayer {
                input: p[0].clone(),
                mix_add: p[1].clone(),
                mix_scale: p[2].clone(),
                out_add: p[3].clone(),
                out_scale: p[4].clone(),
            })
            .collect(),
        ..base.clone()
    };
    // Scaled: a mean over few values is small next to the check's floor.
    check_gradients("Broadcaster::pair_loss", &inputs, |v| {
        let loss = rebuild(v).pair_loss(&pairs, &st, &dev).unwrap();
        crsm::ops::scale(&loss, 20.0).unwrap()
    });
}

fn tiny_model() -> Backbone {
    Backbone::init(CrsmConfig::new(29, 12, 2), 11, &Device::Cpu).unwrap()
}

/// A model whose conv reads only the current input (every earlier tap zero), so a token's whole
/// effect on later steps goes through the SSM states: writing the counterfactual states must
/// then reproduce the counterfactual run exactly. Slow decay and a strong out_proj make the
/// states matter.
fn memoryless_conv_model() -> Backbone {
    let mut model = tiny_model();
    let dev = Device::Cpu;
    for (i, block) in model.blocks.iter_mut().enumerate() {
        let (e, n, k) = (
            block.dims.d_inner,
            block.dims.d_state,
            block.dims.conv_kernel,
        );
        let w = block.conv_weight.to_vec_f32().unwrap();
        let last: Vec<f32> = (0..e * k)
            .map(|j| if j % k == k - 1 { w[j] * 3.0 } else { 0.0 })
            .collect();
        block.conv_weight = Tensor::from_f32(last, &[e, k], &dev).unwrap().as_variable();
        block.a_log = rand_tensor(60 + i as u64, &[e, n], -3.0, -1.5, &dev).as_variable();
        block.dt_bias = rand_tensor(70 + i as u64, &[e], 0.5, 1.5, &dev).as_variable();
        let out = block
            .out_proj
            .to_vec_f32()
            .unwrap()
            .iter()
            .map(|v| v * 6.0)
            .collect();
        block.out_proj = Tensor::from_f32(out, block.out_proj.shape(), &dev)
            .unwrap()
            .as_variable();
    }
    model
}

fn windows(count: usize, len: usize) -> Vec<u32> {
    (0..count * len)
        .map(|i| ((i * 7 + i / 5) % 29) as u32)
        .collect()
}

#[test]
fn state_pairs_are_the_backbones_own_steps_with_a_top_k_token() {
    let model = tiny_model();
    let dev = Device::Cpu;
    let len = 10;
    let tokens = windows(3, len);
    let plan = PairPlan {
        per_window: 2,
        top_k: 4,
        seed: 3,
    };
    let pairs = collect_pairs(&model, &tokens, len, 2, plan, 0).unwrap();
    assert_eq!(pairs.count, 6);
    let ats = positions(len, 2);
    let (zn, hn) = (pairs.z_len(), pairs.h_len());
    for i in 0..pairs.count {
        let (w, t) = (pairs.window[i] as usize, pairs.position[i] as usize);
        assert_eq!((w, t), (i / 2, ats[i % 2]));
        let row = &tokens[w * len..][..len];
        // Replayed one window alone: the state after row[..t], then each token.
        let mut state = model.new_state(1).unwrap();
        let logits = model
            .prefill_last(
                &Tensor::from_u32(row[..t].to_vec(), &[1, t], &dev).unwrap(),
                &mut state,
            )
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let alt = pairs.alt_token[i];
        assert_ne!(alt, row[t], "the counterfactual is another token");
        let mut ranked: Vec<u32> = (0..29).collect();
        ranked.sort_by(|a, b| logits[*b as usize].total_cmp(&logits[*a as usize]));
        let top: Vec<u32> = ranked
            .into_iter()
            .filter(|&x| x != row[t])
            .take(4)
            .collect();
        assert!(
            top.contains(&alt),
            "{alt} is among the top 4 other tokens {top:?}"
        );
        for (token, z, h) in [
            (row[t], &pairs.z, &pairs.h),
            (alt, &pairs.z_alt, &pairs.h_alt),
        ] {
            let mut s = state.snapshot().unwrap();
            let (_, latents) = model
                .step_latents(&Tensor::from_u32(vec![token], &[1], &dev).unwrap(), &mut s)
                .unwrap();
            let want_z: Vec<f32> = latents
                .iter()
                .flat_map(|l| l.to_vec_f32().unwrap())
                .collect();
            let want_h: Vec<f32> = s
                .layers
                .iter()
                .flat_map(|l| l.ssm.to_vec_f32().unwrap())
                .collect();
            for (a, b) in z[i * zn..][..zn].iter().zip(&want_z) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "z {a} vs {b}");
            }
            for (a, b) in h[i * hn..][..hn].iter().zip(&want_h) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "h {a} vs {b}");
            }
        }
    }
    // The draws do not depend on the batching.
    let alone = collect_pairs(&model, &tokens, len, 1, plan, 0).unwrap();
    assert_eq!(alone.alt_token, pairs.alt_token);
}

#[test]
fn delta_r2_is_one_for_the_true_map_and_zero_for_no_change() {
    let dev = Device::Cpu;
    let (layers, d, e, n) = (2, 4, 3, 2);
    let truth = perturbed(config(layers, d, e, n), 9, &dev);
    let count = 5;
    let (z, z_alt, h) = (
        rand_vec(1, count * layers * d, -1.0, 1.0),
        rand_vec(2, count * layers * d, -1.0, 1.0),
        rand_vec(3, count * layers * e * n, -1.0, 1.0),
    );
    let st = Standardizer {
        layers,
        d_model: d,
        mean: vec![0.0; layers * d],
        std: vec![1.0; layers * d],
    };
    let h_alt = truth.propose(&h, &st.change(&z, &z_alt), &dev).unwrap();
    let pairs = StatePairs {
        count,
        layers,
        d_model: d,
        d_inner: e,
        d_state: n,
        window: vec![0; count],
        position: vec![1; count],
        alt_token: vec![0; count],
        z,
        z_alt,
        h,
        h_alt,
    };
    let (per_layer, all) = delta_r2(&truth, &st, &pairs).unwrap();
    assert!((all - 1.0).abs() < 1e-9 && per_layer.iter().all(|r| (r - 1.0).abs() < 1e-9));
    let none = Broadcaster::init(truth.config, 0, &dev).unwrap();
    let (per_layer, all) = delta_r2(&none, &st, &pairs).unwrap();
    assert!(all.abs() < 1e-12 && per_layer.iter().all(|r| r.abs() < 1e-12));
}

#[test]
fn writing_the_true_states_reproduces_the_counterfactual_and_no_proposal_changes_nothing() {
    let model = memoryless_conv_model();
    let dev = Device::Cpu;
    let len = 12;
    let tokens = windows(4, len);
    let plan = PairPlan {
        per_window: 2,
        top_k: 5,
        seed: 1,
    };
    let pairs = collect_pairs(&model, &tokens, len, 4, plan, 0).unwrap();
    let trace = LatentTrace::collect(&model, &tokens, len, 4).unwrap();
    let st = Standardizer::fit(&trace.z, trace.layers, trace.d_model).unwrap();
    let c = &model.config;
    let untrained = Broadcaster::init(
        BroadcasterConfig {
            layers: c.applications(),
            d_model: c.hidden_size,
            d_inner: c.d_inner(),
            d_state: c.state_size,
            rank: 4,
            channel_rank: 2,
        },
        0,
        &dev,
    )
    .unwrap();
    let fit = broadcast_fit(&model, &untrained, &st, &trace, &pairs, 3).unwrap();
    assert_eq!(fit.pairs, 8);
    assert_eq!(
        fit.after.iter().map(|a| a.steps).collect::<Vec<_>>(),
        vec![1, REPLAY_STEPS]
    );
    for a in &fit.after {
        // No proposal is no injection, exactly.
        assert_eq!(a.latent_mse.broadcast, a.latent_mse.none);
        assert_eq!(a.token_kl.broadcast, a.token_kl.none);
        assert!(a.latent_mse.none > 0.0 && a.token_kl.none > 0.0);
    }
    // With a conv that reads only the current input, the counterfactual SSM states are the whole
    // counterfactual: writing them reproduces its run (to rounding), at every horizon.
    for a in &fit.after {
        assert!(a.latent_mse.exact < 1e-9 * a.latent_mse.none, "{a:?}");
        assert!(a.token_kl.exact < 1e-6 * a.token_kl.none.max(1e-3), "{a:?}");
    }
}
