//! The latent model: traces, standardisation, the dynamics GRU (shapes, budget, gradients) and the
//! fit report's baselines.

#[path = "support/scratch.rs"]
mod scratch;

#[path = "kernels/common.rs"]
#[allow(dead_code)]
mod common;

use common::{check_gradients, rand_tensor, rand_vec};
use crsm::latent::fit::evaluate;
use crsm::latent::{
    Dynamics, DynamicsConfig, Identity, LatentTrace, LinearBaseline, Standardizer, TokenInputs,
};
use crsm::model::{Backbone, CrsmConfig};
use crsm::{Device, Tensor, no_grad};

/// Parameters of a Mamba backbone from its config (HF's count: tied head, no biases).
fn backbone_parameters(c: &CrsmConfig) -> usize {
    let (v, d, n, k) = (c.vocab_size, c.hidden_size, c.state_size, c.conv_kernel);
    let e = c.expand * d;
    let r = c.dt_rank();
    let block = d * 2 * e + e * k + e + e * (r + 2 * n) + r * e + e + e * n + e + e * d + d;
    v * d + c.num_hidden_layers * block + d
}

#[test]
fn the_backbone_parameter_formula_counts_what_init_makes() {
    let c = CrsmConfig::new(97, 32, 3);
    let model = Backbone::init(c.clone(), 0, &Device::Cpu).unwrap();
    let made: usize = model.parameters().iter().map(|p| p.elem_count()).sum();
    assert_eq!(backbone_parameters(&c), made);
}

#[test]
fn dynamics_costs_under_five_percent_of_mamba_130m() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mamba-130m.json");
    let c = crsm::train::RunConfig::from_json_file(&path).unwrap().model;
    let backbone = backbone_parameters(&c);
    assert_eq!(backbone, 129_135_360, "mamba-130m's published size");
    let (layers, d) = (c.applications(), c.hidden_size);
    let dynamics = Dynamics::init(DynamicsConfig { layers, d_model: d }, 0, &Device::Cpu).unwrap();
    let expected = 7 * d * d + 6 * d + 3 * layers * d;
    assert_eq!(dynamics.parameter_count(), expected);
    let share = dynamics.parameter_count() as f64 / backbone as f64;
    assert!(
        share < 0.05,
        "dynamics is {:.1}% of the backbone",
        share * 100.0
    );
}

#[test]
fn untrained_dynamics_is_exactly_the_identity() {
    let dev = Device::Cpu;
    let dynamics = Dynamics::init(
        DynamicsConfig {
            layers: 3,
            d_model: 8,
        },
        1,
        &dev,
    )
    .unwrap();
    let s = rand_tensor(2, &[5, 3, 8], -2.0, 2.0, &dev);
    let x = rand_tensor(3, &[5, 8], -1.0, 1.0, &dev);
    let next = dynamics.step(&s, &x).unwrap();
    assert_eq!(next.to_vec_f32().unwrap(), s.to_vec_f32().unwrap());
}

/// A dynamics model whose output map is not zero, so every parameter moves the prediction.
fn perturbed_dynamics(layers: usize, d: usize, dev: &Device) -> Dynamics {
    let mut m = Dynamics::init(DynamicsConfig { layers, d_model: d }, 4, dev).unwrap();
    m.w_out = rand_tensor(40, &[d, d], -0.8, 0.8, dev).as_variable();
    m.gain = rand_tensor(42, &[layers, d], 0.5, 1.5, dev).as_variable();
    m.b_out = rand_tensor(41, &[layers, d], -0.5, 0.5, dev).as_variable();
    m
}

#[test]
fn the_unrolled_dynamics_matches_finite_differences_through_every_step() {
    let dev = Device::Cpu;
    let (layers, d, b, k) = (2, 4, 3, 3);
    let base = perturbed_dynamics(layers, d, &dev);
    let s0 = rand_tensor(5, &[b, layers, d], -1.5, 1.5, &dev);
    let xs: Vec<Tensor> = (0..k)
        .map(|j| rand_tensor(10 + j as u64, &[b, d], -1.0, 1.0, &dev))
        .collect();
    let targets: Vec<Tensor> = (0..k)
        .map(|j| rand_tensor(20 + j as u64, &[b, layers, d], -1.5, 1.5, &dev))
        .collect();
    let mut inputs: Vec<Tensor> = base
        .named_parameters()
        .iter()
        .map(|(_, p)| p.detach())
        .collect();
    inputs.push(s0);
    let rebuild = |v: &[Tensor]| Dynamics {
        config: base.config,
        layer_embed: v[0].clone(),
        w_ih: v[1].clone(),
        w_hh: v[2].clone(),
        b_ih: v[3].clone(),
        b_hh: v[4].clone(),
        w_out: v[5].clone(),
        gain: v[6].clone(),
        b_out: v[7].clone(),
    };
    // Every step's prediction (the graph the planner rolls forward) ...
    check_gradients("Dynamics::unroll", &inputs, |v| {
        let outs = rebuild(v).unroll(&v[8], &xs).unwrap();
        crsm::ops::concat(&outs.iter().collect::<Vec<_>>(), 0).unwrap()
    });
    // ... and the unrolled loss on top of it (scaled: a mean over 72 values is small).
    check_gradients("Dynamics::unrolled_loss", &inputs, |v| {
        let loss = rebuild(v).unrolled_loss(&v[8], &xs, &targets).unwrap();
        crsm::ops::scale(&loss, 50.0).unwrap()
    });
}

#[test]
fn standardizing_gives_zero_mean_unit_spread_and_inverts() {
    let (layers, d, rows) = (2, 3, 50);
    let z: Vec<f32> = rand_vec(7, rows * layers * d, -3.0, 5.0)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i % 6) as f32))
        .collect();
    let st = Standardizer::fit(&z, layers, d).unwrap();
    let mut s = z.clone();
    st.apply(&mut s);
    for j in 0..layers * d {
        let col: Vec<f64> = s.chunks(layers * d).map(|r| r[j] as f64).collect();
        let mean = col.iter().sum::<f64>() / rows as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "channel {j}: {mean} {var}"
        );
    }
    st.invert(&mut s);
    for (a, b) in s.iter().zip(&z) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0));
    }
    assert!(Standardizer::fit(&z[..7], layers, d).is_err());
}

/// A trace of a known linear system z_{t+1} = 0.8 z_t + B x[token_{t+1}] + c per layer (raw units).
fn linear_system_trace(
    windows: usize,
    len: usize,
    layers: usize,
    d: usize,
) -> (LatentTrace, Vec<f32>) {
    let vocab = 7;
    let inputs = rand_vec(30, vocab * d, -1.0, 1.0);
    let b = rand_vec(31, layers * d * d, -0.5, 0.5);
    let c = rand_vec(32, layers * d, -0.3, 0.3);
    let tokens: Vec<u32> = rand_vec(33, windows * len, 0.0, vocab as f32)
        .iter()
        .map(|v| (*v as u32).min(vocab as u32 - 1))
        .collect();
    let n = layers * d;
    let mut z = vec![0f32; windows * len * n];
    for w in 0..windows {
        let mut s = rand_vec(34 + w as u64, n, -1.0, 1.0);
        for t in 0..len {
            z[(w * len + t) * n..][..n].copy_from_slice(&s);
            let Some(&next_token) = tokens.get(w * len + t + 1) else {
                break;
            };
            let x = &inputs[next_token as usize * d..][..d];
            let mut next = vec![0f32; n];
            for i in 0..layers {
                for j in 0..d {
                    let bx: f32 = (0..d).map(|q| b[(i * d + j) * d + q] * x[q]).sum();
                    next[i * d + j] = 0.8 * s[i * d + j] + bx + c[i * d + j];
                }
            }
            s = next;
        }
    }
    let trace = LatentTrace {
        windows,
        len,
        layers,
        d_model: d,
        tokens,
        z,
    };
    (trace, inputs)
}

#[test]
fn identity_scores_zero_and_least_squares_recovers_a_linear_system() {
    let (trace, inputs) = linear_system_trace(12, 20, 2, 3);
    let st = Standardizer::fit(&trace.z, trace.layers, trace.d_model).unwrap();
    let ks = [1, 2, 4, 8];
    let identity = evaluate(&Identity, &trace, &st, &ks, 1, None).unwrap();
    for f in &identity.fits {
        assert!(
            f.r2_change.abs() < 1e-9,
            "identity at k={}: {}",
            f.k,
            f.r2_change
        );
    }
    let linear = LinearBaseline::fit(&trace, &st, inputs, 1e-9).unwrap();
    let fit = evaluate(&linear, &trace, &st, &ks, 1, None).unwrap();
    for f in &fit.fits {
        assert!(f.r2_change > 0.999, "linear at k={}: {}", f.k, f.r2_change);
        assert!(f.cosine > 0.999, "linear cosine at k={}: {}", f.k, f.cosine);
    }
}

#[test]
fn trace_latents_are_causal_and_are_the_backbone_residuals() {
    let dev = Device::Cpu;
    let model = Backbone::init(CrsmConfig::new(31, 16, 2), 3, &dev).unwrap();
    let len = 6;
    let tokens: Vec<u32> = (0..3 * len as u32).map(|t| (t * 7 + 1) % 31).collect();
    let trace = LatentTrace::collect(&model, &tokens, len, 2).unwrap();
    assert_eq!((trace.windows, trace.layers, trace.d_model), (3, 2, 16));
    // Window 1, layer 1, position 3 is the backbone's residual there.
    let _off = no_grad();
    let ids = Tensor::from_u32(tokens[len..2 * len].to_vec(), &[1, len], &dev).unwrap();
    let r = model.residuals(&ids).unwrap()[1].to_vec_f32().unwrap();
    // (to rounding: a batch of two windows blocks its matmuls differently from a batch of one)
    for (a, b) in trace.at(1, 3)[16..32].iter().zip(&r[3 * 16..4 * 16]) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }
    // Changing a later token leaves earlier latents alone and moves its own.
    let mut changed = tokens.clone();
    changed[len + 4] = (changed[len + 4] + 5) % 31;
    let other = LatentTrace::collect(&model, &changed, len, 2).unwrap();
    for t in 0..4 {
        assert_eq!(
            trace.at(1, t),
            other.at(1, t),
            "position {t} saw the future"
        );
    }
    assert_ne!(trace.at(1, 4), other.at(1, 4));
    assert!(LatentTrace::collect(&model, &tokens[..7], len, 2).is_err());
}

#[test]
fn token_inputs_have_unit_rms() {
    let dev = Device::Cpu;
    let table = rand_tensor(50, &[11, 6], -0.05, 0.05, &dev);
    let inputs = TokenInputs::new(&table).unwrap();
    let all = inputs
        .of(&Tensor::from_u32((0..11).collect(), &[11], &dev).unwrap())
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let rms = (all.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
    assert!((rms - 1.0).abs() < 1e-5, "{rms}");
}

#[test]
fn value_targets_are_discounted_per_token_log_likelihoods() {
    use crsm::latent::value_target::discounted_log_likelihood;
    let lp = [-1.0, -2.0, -3.0, -4.0];
    // H = 2, gamma = 0.5: (lp[t] + 0.5 lp[t+1]) / 1.5
    let v = discounted_log_likelihood(&lp, 2, 0.5).unwrap();
    let want = [-4.0 / 3.0, -7.0 / 3.0, -10.0 / 3.0];
    assert_eq!(v.len(), 3);
    for (a, b) in v.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // H = 1 is the next token's log-likelihood itself.
    assert_eq!(discounted_log_likelihood(&lp, 1, 0.9).unwrap(), lp.to_vec());
    assert!(discounted_log_likelihood(&lp, 0, 0.9).is_err());
    assert!(discounted_log_likelihood(&lp, 2, 1.5).is_err());
}

#[test]
fn correlations_match_hand_computed_values() {
    use crsm::latent::correlation::{pearson, spearman};
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    let y = [2.0, 4.0, 6.0, 8.0, 10.0];
    assert!((pearson(&x, &y) - 1.0).abs() < 1e-12);
    let rev: Vec<f64> = y.iter().rev().copied().collect();
    assert!((pearson(&x, &rev) + 1.0).abs() < 1e-12);
    // Monotone but not linear: Spearman 1, Pearson below 1.
    let cube: Vec<f64> = x.iter().map(|v: &f64| v.powi(3)).collect();
    assert!((spearman(&x, &cube) - 1.0).abs() < 1e-12);
    assert!(pearson(&x, &cube) < 0.99);
    // Ties take their mean rank: ranks of [1, 2, 2, 3] are [0, 1.5, 1.5, 3].
    let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[0.0, 1.5, 1.5, 3.0]);
    assert!((r - 1.0).abs() < 1e-12, "{r}");
    // scipy.stats.pearsonr([1, 2, 3, 4], [1, 3, 2, 4]) = 0.8
    assert!((pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
}

#[test]
fn pair_accuracy_counts_only_pairs_inside_a_group_of_different_states() {
    use crsm::latent::correlation::within_group_pair_accuracy;
    // Group 7: right answers 0 (score 0.9) and 2 (0.4); wrong ones 1 (0.5) and 3 (0.4, the same
    // state as 2). Pairs (0,1) win, (0,3) win, (2,1) lose; (2,3) is the same state: 2 of 3.
    // Group 8: only right answers: no pair. Group 9: a tie: half. Across groups, 9's right
    // answer (0.1) would lose to 7's wrong ones, but pairs never cross groups.
    let group = [7, 7, 7, 7, 8, 8, 9, 9];
    let state = [1, 2, 3, 3, 4, 5, 6, 7];
    let score = [0.9, 0.5, 0.4, 0.4, 0.3, 0.2, 0.1, 0.1];
    let right = [true, false, true, false, true, true, true, false];
    let got = within_group_pair_accuracy(&group, &state, &score, &right);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].0 == 7 && (got[0].1 - 2.0 / 3.0).abs() < 1e-12 && got[0].2 == 3,
        "{got:?}"
    );
    assert!(
        got[1].0 == 9 && (got[1].1 - 0.5).abs() < 1e-12 && got[1].2 == 1,
        "{got:?}"
    );
}

#[test]
fn the_critic_loss_matches_finite_differences_through_every_head() {
    use crsm::latent::{Critic, CriticConfig, ValueHead};
    let dev = Device::Cpu;
    let (layers, d, hidden, b) = (3, 4, 5, 6);
    let base = Critic::init(
        CriticConfig {
            layers,
            d_model: d,
            hidden,
        },
        2,
        &dev,
    )
    .unwrap();
    let s = rand_tensor(60, &[b, layers, d], -2.0, 2.0, &dev);
    let c = rand_tensor(62, &[b, 1], -2.0, 2.0, &dev);
    let targets = rand_tensor(61, &[b], -1.5, 1.5, &dev);
    // The certainty's direct weight starts at 0; a non-zero one so its path is checked too.
    let mut inputs: Vec<Tensor> = base
        .heads
        .iter()
        .enumerate()
        .flat_map(|(i, h)| {
            [
                h.w1.detach(),
                h.b1.detach(),
                h.w2.detach(),
                h.b2.detach(),
                h.u.detach(),
                rand_tensor(70 + i as u64, &[1, 1], 0.3, 0.9, &dev),
            ]
        })
        .collect();
    inputs.extend([s, c]);
    let rebuild = |v: &[Tensor]| Critic {
        config: base.config,
        heads: (0..layers)
            .map(|i| ValueHead {
                w1: v[6 * i].clone(),
                b1: v[6 * i + 1].clone(),
                w2: v[6 * i + 2].clone(),
                b2: v[6 * i + 3].clone(),
                u: v[6 * i + 4].clone(),
                a: v[6 * i + 5].clone(),
            })
            .collect(),
    };
    check_gradients("Critic::values", &inputs, |v| {
        rebuild(v)
            .values(&v[6 * layers], &v[6 * layers + 1])
            .unwrap()
    });
    check_gradients("Critic::loss", &inputs, |v| {
        let loss = rebuild(v)
            .loss(&v[6 * layers], &v[6 * layers + 1], &targets)
            .unwrap();
        crsm::ops::scale(&loss, 20.0).unwrap()
    });
}

#[test]
fn confidence_falls_with_held_out_error_and_disagreement() {
    use crsm::latent::confidence;
    let c = confidence(&[0.5, 0.5, 0.5], &[0.0, 1.0, 0.1]);
    assert_eq!(c[0], 1.0, "accurate and agreeing: full trust");
    assert!(
        (c[1] - 0.5).abs() < 1e-6,
        "one standard deviation of error halves it"
    );
    assert!(c[2] < c[0] && c[2] > c[1]);
    let c = confidence(&[0.0, 0.0, 3.0], &[0.1, 0.1, 0.1]);
    assert!(c[2] < c[0], "the dissenting head is trusted less");
}

#[test]
fn critic_heads_stay_small_at_mamba_130m() {
    use crsm::latent::{Critic, CriticConfig};
    let critic = Critic::init(
        CriticConfig {
            layers: 24,
            d_model: 768,
            hidden: 32,
        },
        0,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        critic.parameter_count(),
        24 * (32 * 768 + 32 + 32 + 1 + 32 + 1)
    );
    let dynamics = 7 * 768 * 768 + 6 * 768 + 3 * 24 * 768;
    let share = (critic.parameter_count() + dynamics) as f64 / 129_135_360.0;
    assert!(share < 0.05, "dynamics + critic = {:.2}%", share * 100.0);
}

mod trace_shards {
    use super::scratch::Scratch;
    use crsm::data::{TokenShard, Tokenized, write_split};
    use crsm::latent::trace_shards::{FORMAT, TraceHeader, TraceSet, VERSION, collect};
    use crsm::model::{Backbone, CrsmConfig};
    use crsm::{Device, Error};
    use std::path::Path;

    fn shard(dir: &Path) -> TokenShard {
        let ids: Vec<u32> = (0..400u32).map(|t| (t * 13 + 5) % 31).collect();
        let tokens = Tokenized {
            loss: vec![true; ids.len()],
            ids,
            bytes: 400,
        };
        write_split(dir, "train", &tokens, 31, "tok-hash", None).unwrap();
        TokenShard::open(dir, "train", None).unwrap()
    }

    fn plan(model: &Backbone, source: &str) -> TraceHeader {
        TraceHeader {
            format: FORMAT.into(),
            version: VERSION,
            source_hash: source.into(),
            token_shard: "train".into(),
            tokenizer_hash: "tok-hash".into(),
            seed: 9,
            len: 7,
            windows: 11,
            windows_per_part: 3,
            batch: 2,
            layers: model.config.applications(),
            d_model: model.config.hidden_size,
            pairs_per_window: 2,
            pair_top_k: 3,
            d_inner: model.config.d_inner(),
            d_state: model.config.state_size,
        }
    }

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn an_interrupted_collection_resumes_to_byte_identical_parts() {
        let data = Scratch::new("latent", "shard-resume");
        let (whole, halves) = (data.join("whole"), data.join("halves"));
        let shard = shard(&data);
        let model = Backbone::init(CrsmConfig::new(31, 16, 2), 3, &Device::Cpu).unwrap();
        let h = plan(&model, "abc");
        assert_eq!(h.parts(), 4);
        let mut seen = Vec::new();
        let done = collect(&whole, &h, &model, &shard, None, &mut |d, t| {
            seen.push((d, t))
        })
        .unwrap();
        assert_eq!((done, seen.last().copied()), (4, Some((4, 4))));
        // Stopped after two parts, then again after one more, then finished.
        assert_eq!(
            collect(&halves, &h, &model, &shard, Some(2), &mut |_, _| {}).unwrap(),
            2
        );
        assert!(
            TraceSet::open(&halves, None).is_err(),
            "an unfinished set does not open"
        );
        assert_eq!(
            collect(&halves, &h, &model, &shard, Some(1), &mut |_, _| {}).unwrap(),
            3
        );
        assert_eq!(
            collect(&halves, &h, &model, &shard, None, &mut |_, _| {}).unwrap(),
            4
        );
        assert_eq!(files(&whole), files(&halves));
        // The parts read back as the backbone's latents of the windows they hold.
        let set = TraceSet::open(&whole, Some("abc")).unwrap();
        let last = set.part(3).unwrap();
        assert_eq!(last.windows, 2, "11 windows in parts of 3");
        let again = crsm::latent::LatentTrace::collect(&model, &last.tokens, 7, 1).unwrap();
        for (a, b) in last.z.iter().zip(&again.z) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0));
        }
    }

    #[test]
    fn traces_of_another_plan_or_checkpoint_and_truncated_parts_are_refused() {
        let data = Scratch::new("latent", "shard-refuse");
        let dir = data.join("traces");
        let shard = shard(&data);
        let model = Backbone::init(CrsmConfig::new(31, 16, 2), 3, &Device::Cpu).unwrap();
        collect(
            &dir,
            &plan(&model, "abc"),
            &model,
            &shard,
            None,
            &mut |_, _| {},
        )
        .unwrap();
        // Another checkpoint: refused on resume (naming the field) and on open.
        let other = plan(&model, "xyz");
        match collect(&dir, &other, &model, &shard, None, &mut |_, _| {}) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "source_hash"),
            other => panic!("expected a config error, got {:?}", other.map(|_| ())),
        }
        let rebatched = TraceHeader {
            batch: 3,
            ..plan(&model, "abc")
        };
        match collect(&dir, &rebatched, &model, &shard, None, &mut |_, _| {}) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "batch"),
            other => panic!("expected a config error, got {:?}", other.map(|_| ())),
        }
        let e = TraceSet::open(&dir, Some("xyz")).err().unwrap().to_string();
        assert!(e.contains("another checkpoint"), "{e}");
        // A model of another shape does not match the plan.
        let wide = Backbone::init(CrsmConfig::new(31, 8, 2), 3, &Device::Cpu).unwrap();
        assert!(
            collect(
                &dir,
                &plan(&model, "abc"),
                &wide,
                &shard,
                None,
                &mut |_, _| {}
            )
            .is_err()
        );
        // A truncated part is named.
        let part = dir.join("part-00001.bin");
        let bytes = std::fs::read(&part).unwrap();
        std::fs::write(&part, &bytes[..bytes.len() - 3]).unwrap();
        let e = TraceSet::open(&dir, Some("abc")).err().unwrap().to_string();
        assert!(
            e.contains("part-00001.bin") && e.contains("truncated"),
            "{e}"
        );
        std::fs::write(&part, &bytes).unwrap();
        // So is a truncated pairs file, and a NaN in one is found when it is read.
        let pairs = dir.join("pairs-00002.bin");
        let pair_bytes = std::fs::read(&pairs).unwrap();
        std::fs::write(&pairs, &pair_bytes[..pair_bytes.len() - 1]).unwrap();
        let e = TraceSet::open(&dir, Some("abc")).err().unwrap().to_string();
        assert!(
            e.contains("pairs-00002.bin") && e.contains("truncated"),
            "{e}"
        );
        let mut bad_pair = pair_bytes.clone();
        let at = bad_pair.len() - 4;
        bad_pair[at..].copy_from_slice(&f32::INFINITY.to_le_bytes());
        std::fs::write(&pairs, &bad_pair).unwrap();
        let e = TraceSet::open(&dir, Some("abc"))
            .unwrap()
            .pairs(2)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("pairs-00002.bin") && e.contains("non-finite"),
            "{e}"
        );
        std::fs::write(&pairs, &pair_bytes).unwrap();
        // A NaN written into a part is found when it is read.
        let mut bad = bytes.clone();
        let at = bad.len() - 4;
        bad[at..].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&part, &bad).unwrap();
        let set = TraceSet::open(&dir, Some("abc")).unwrap();
        let e = set.part(1).err().unwrap().to_string();
        assert!(
            e.contains("part-00001.bin") && e.contains("non-finite"),
            "{e}"
        );
    }
}

mod dynamics_task {
    use super::scratch::Scratch;
    use crsm::Device;
    use crsm::data::{DataPosition, TokenShard, Tokenized, write_split};
    use crsm::latent::trace_shards::{FORMAT, TraceHeader, TraceSet, VERSION, collect};
    use crsm::latent::{Dynamics, DynamicsConfig, LatentTrace, Standardizer};
    use crsm::model::{Backbone, CrsmConfig};
    use crsm::train::dynamics_task::{DYNAMICS_FILE, DynamicsTask};
    use crsm::train::{AdamW, AdamWConfig, Task};

    fn setup(dir: &std::path::Path) -> (Backbone, TraceSet, LatentTrace) {
        let ids: Vec<u32> = (0..900u32).map(|t| (t * 13 + t / 7) % 31).collect();
        let tokens = Tokenized {
            loss: vec![true; ids.len()],
            ids,
            bytes: 900,
        };
        write_split(dir, "train", &tokens, 31, "tok", None).unwrap();
        let shard = TokenShard::open(dir, "train", None).unwrap();
        let model = Backbone::init(CrsmConfig::new(31, 16, 2), 3, &Device::Cpu).unwrap();
        let header = TraceHeader {
            format: FORMAT.into(),
            version: VERSION,
            source_hash: "m".into(),
            token_shard: "train".into(),
            tokenizer_hash: "tok".into(),
            seed: 1,
            len: 9,
            windows: 10,
            windows_per_part: 4,
            batch: 4,
            layers: 2,
            d_model: 16,
            pairs_per_window: 0,
            pair_top_k: 0,
            d_inner: 32,
            d_state: 16,
        };
        let traces = dir.join("traces");
        collect(&traces, &header, &model, &shard, None, &mut |_, _| {}).unwrap();
        let set = TraceSet::open(&traces, Some("m")).unwrap();
        let val = set.part(2).unwrap();
        (model, set, val)
    }

    fn task(model: &Backbone, set: TraceSet, val: LatentTrace, at: DataPosition) -> DynamicsTask {
        let first = set.part(0).unwrap();
        let st = Standardizer::fit(&first.z, 2, 16).unwrap();
        let dynamics = Dynamics::init(
            DynamicsConfig {
                layers: 2,
                d_model: 16,
            },
            7,
            &Device::Cpu,
        )
        .unwrap();
        DynamicsTask::new(dynamics, st, &model.embeddings, set, val, 3, at).unwrap()
    }

    #[test]
    fn the_dynamics_task_resumes_its_stream_exactly_and_learns() {
        let dir = Scratch::new("latent", "dynamics-task");
        let (model, set, val) = setup(&dir);
        let start = DataPosition {
            seed: 5,
            epoch: 0,
            index: 0,
        };
        let mut a = task(
            &model,
            TraceSet::open(&dir.join("traces"), None).unwrap(),
            val.clone(),
            start,
        );
        // 10 windows x (9 - 3) starts = 60 samples an epoch; 25 batches of 7 cross epochs.
        let mut losses = Vec::new();
        let mut positions = Vec::new();
        for _ in 0..25 {
            positions.push(a.data_position());
            losses.push(a.next_loss(7).unwrap().0.scalar().unwrap());
        }
        assert!(a.data_position().epoch >= 2, "{:?}", a.data_position());
        // A task started at any saved position yields the very same next batch.
        for k in [0, 8, 9, 17] {
            let mut b = task(
                &model,
                TraceSet::open(&dir.join("traces"), None).unwrap(),
                val.clone(),
                positions[k],
            );
            assert_eq!(
                b.next_loss(7).unwrap().0.scalar().unwrap(),
                losses[k],
                "batch {k}"
            );
        }
        // A few AdamW steps lower the held-out loss.
        let mut t = task(&model, set, val, start);
        let before = t.evaluate(8, 0).unwrap();
        let mut opt = AdamW::new(AdamWConfig {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
        });
        for _ in 0..30 {
            let (loss, _) = t.next_loss(16).unwrap();
            let grads = loss.backward().unwrap();
            opt.step(t.parameters_mut(), &grads, 3e-3, 1.0).unwrap();
        }
        let after = t.evaluate(8, 0).unwrap();
        assert!(
            after.loss < before.loss * 0.95,
            "held-out loss {} -> {}",
            before.loss,
            after.loss
        );
        assert_eq!(t.decays().len(), t.named_parameters().len());
        t.save_weights(&dir).unwrap();
        let saved = crsm::io::load_safetensors_file(&dir.join(DYNAMICS_FILE)).unwrap();
        assert!(
            saved.contains_key("crsm.dynamics.gru.weight_ih")
                && saved.contains_key("crsm.latent.std")
        );
    }

    #[test]
    fn the_trainer_trains_the_dynamics_and_resumes_it_exactly() {
        use crsm::train::drift::RunRecord;
        use crsm::train::{RunConfig, Silent, Start, Trainer};
        let dir = Scratch::new("latent", "dynamics-trainer");
        let (model, _, val) = setup(&dir);
        let traces = dir.join("traces");
        let run = |out: &str, max_steps: usize| {
            let json = serde_json::json!({
                "model": {"vocab_size": 31, "hidden_size": 16, "num_hidden_layers": 2},
                "training": {
                    "data": traces, "tokenizer": "none", "out_dir": dir.join(out),
                    "batch_size": 8, "seq_len": 8, "grad_accum": 2, "max_steps": max_steps,
                    "lr": 0.003, "warmup_steps": 1, "eval_every": 3, "eval_tokens": 0,
                    "checkpoint_every": 3, "device": "cpu", "seed": 4
                }
            });
            RunConfig::from_json_str(&json.to_string(), "dynamics run")
                .unwrap()
                .training
        };
        let record = |training: &crsm::train::TrainingConfig| RunRecord {
            tokenizer_sha256: "tok".into(),
            shards_sha256: crsm::data::sha256_file(&traces.join("traces.json")).unwrap(),
            training: serde_json::to_value(training).unwrap(),
        };
        let make = |ckpt: Option<&std::path::Path>, at: DataPosition| {
            let set = TraceSet::open(&traces, Some("m"))?;
            let mut t = task(&model, set, val.clone(), at);
            if let Some(ckpt) = ckpt {
                t.load_weights(ckpt)?;
            }
            Ok(t)
        };
        let losses = |t: &Trainer<DynamicsTask>| -> Vec<f32> {
            t.metrics.steps.iter().map(|s| s.loss).collect()
        };
        // Six steps at once ...
        let training = run("whole", 6);
        let mut whole = Trainer::start(
            training.clone(),
            Start::Fresh,
            record(&training),
            None,
            make,
        )
        .unwrap();
        whole.run(None, &mut Silent).unwrap();
        let evals: Vec<f64> = whole.metrics.evals.iter().map(|e| e.loss).collect();
        assert!(evals[1] < evals[0], "held-out loss {evals:?}");
        // ... and three, a stop, three more from the checkpoint: the same losses, bit for bit.
        let training = run("halves", 6);
        let mut first = Trainer::start(
            training.clone(),
            Start::Fresh,
            record(&training),
            None,
            make,
        )
        .unwrap();
        first.run(Some(3), &mut Silent).unwrap();
        drop(first);
        let mut second = Trainer::start(
            training.clone(),
            Start::Resume,
            record(&training),
            None,
            make,
        )
        .unwrap();
        assert_eq!(second.state_step, 3);
        second.run(None, &mut Silent).unwrap();
        assert_eq!(losses(&second), losses(&whole));
        let w = whole.task.dynamics.w_out.to_vec_f32().unwrap();
        assert_eq!(second.task.dynamics.w_out.to_vec_f32().unwrap(), w);
    }
}

#[test]
fn trace_values_read_the_next_tokens_log_probabilities_through_the_head() {
    use crsm::latent::PolicyHead;
    use crsm::latent::value_target::trace_values;
    /// log p(v | position t) = -(t + 1) - v / 100, whatever the latent says about t: the row index.
    struct Known {
        vocab: usize,
    }
    impl PolicyHead for Known {
        fn log_probs(&self, _raw: &[f32], rows: usize) -> crsm::Result<Vec<f32>> {
            Ok((0..rows)
                .flat_map(|t| (0..self.vocab).map(move |v| -(t as f32 + 1.0) - v as f32 / 100.0))
                .collect())
        }
    }
    let (windows, len, layers, d) = (2, 5, 1, 2);
    let tokens: Vec<u32> = vec![0, 1, 2, 3, 4, 4, 3, 2, 1, 0];
    let trace = LatentTrace {
        windows,
        len,
        layers,
        d_model: d,
        tokens: tokens.clone(),
        z: vec![0.0; windows * len * layers * d],
    };
    let all = trace_values(&Known { vocab: 5 }, &trace, 2, 0.5).unwrap();
    let v = &all.values;
    // The certainty is the negative entropy of each position's (unnormalised here) row.
    for (i, c) in all.certainty.iter().enumerate() {
        let t = i % len;
        let want: f64 = (0..5)
            .map(|v| {
                let l = -(t as f64 + 1.0) - v as f64 / 100.0;
                l.exp() * l
            })
            .sum();
        assert!(
            (*c as f64 - want).abs() < 1e-5,
            "position {i}: {c} vs {want}"
        );
    }
    for w in 0..windows {
        let next = |t: usize| -(t as f32 + 1.0) - tokens[w * len + t + 1] as f32 / 100.0;
        for t in 0..len {
            let got = v[w * len + t];
            if t + 2 < len {
                let want = (next(t) + 0.5 * next(t + 1)) / 1.5;
                assert!(
                    (got - want).abs() < 1e-5,
                    "window {w} t {t}: {got} vs {want}"
                );
            } else {
                assert!(
                    got.is_nan(),
                    "window {w} t {t} has no 2 tokens ahead: {got}"
                );
            }
        }
    }
}

#[test]
fn a_head_that_gives_nan_is_an_error_not_a_missing_target() {
    use crsm::latent::PolicyHead;
    use crsm::latent::value_target::trace_values;
    struct Broken;
    impl PolicyHead for Broken {
        fn log_probs(&self, _raw: &[f32], rows: usize) -> crsm::Result<Vec<f32>> {
            let mut v = vec![-1.0f32; rows * 3];
            v[4] = f32::NAN;
            Ok(v)
        }
    }
    let trace = LatentTrace {
        windows: 1,
        len: 4,
        layers: 1,
        d_model: 2,
        tokens: vec![0, 1, 2, 1],
        z: vec![0.0; 8],
    };
    let e = trace_values(&Broken, &trace, 2, 0.5)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("NaN") && e.contains("window 0") && e.contains("position 1"),
        "{e}"
    );
}
