//! The training loop on a tiny model and corpus (cpu): a resumed run continues exactly as an
//! uninterrupted one, a non-finite loss skips the step without touching the weights (and too many
//! in a row stop the run with an error), unknown config keys are named, and a short run learns.

#[path = "support/scratch.rs"]
mod scratch;
use scratch::Scratch;

use std::path::Path;

use crsm::data::{BadLinePolicy, ValSource, prepare, train_bpe_on_texts};
use crsm::train::{MAX_CONSECUTIVE_SKIPS, RunConfig, Silent, StepOutcome, Trainer};
use crsm::{Device, Tensor};

fn corpus(seed: usize) -> String {
    let words = [
        "the", "lady", "said", "that", "her", "sister", "was", "very", "happy", "at", "home",
        "today", "and", "then",
    ];
    (0..600)
        .map(|i| words[(i * 7 + seed + i / 3) % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tokenizer, shards and a run config for a tiny model under `dir`, writing to `dir/out`.
fn tiny_run(dir: &Path, max_steps: usize) -> RunConfig {
    let tok = train_bpe_on_texts(std::iter::once(corpus(0)), 300).unwrap();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path).unwrap();
    std::fs::write(dir.join("train.txt"), corpus(0)).unwrap();
    std::fs::write(dir.join("val.txt"), corpus(5)).unwrap();
    let data = dir.join("data");
    prepare(
        &dir.join("train.txt"),
        &tok_path,
        &data,
        &ValSource::File(dir.join("val.txt")),
        BadLinePolicy::Fail,
    )
    .unwrap();
    let json = serde_json::json!({
        "model": {"vocab_size": tok.vocab_size(), "hidden_size": 32, "num_hidden_layers": 2, "state_size": 8},
        "training": {
            "data": data, "tokenizer": tok_path, "out_dir": dir.join("out"),
            "batch_size": 2, "seq_len": 32, "grad_accum": 2, "max_steps": max_steps,
            "lr": 0.003, "min_lr": 0.0003, "warmup_steps": 2, "eval_every": 3, "eval_tokens": 256,
            "checkpoint_every": 1000, "device": "cpu", "seed": 3
        }
    });
    RunConfig::from_json_str(&json.to_string(), "tiny").unwrap()
}

fn weights(trainer: &Trainer) -> Vec<Vec<f32>> {
    trainer
        .model
        .parameters()
        .iter()
        .map(|p| p.to_vec_f32().unwrap())
        .collect()
}

#[test]
fn a_resumed_run_continues_exactly_as_an_uninterrupted_one() {
    let (a, b) = (
        Scratch::new("train-test", "whole"),
        Scratch::new("train-test", "resumed"),
    );
    let mut whole = Trainer::new(tiny_run(&a, 6), &Device::Cpu).unwrap();
    whole.run(None, &mut Silent).unwrap();

    let config = tiny_run(&b, 6);
    let mut first = Trainer::new(config.clone(), &Device::Cpu).unwrap();
    first.run(Some(3), &mut Silent).unwrap();
    assert_eq!(first.state_step, 3);
    drop(first);
    let mut second = Trainer::resume(config, &Device::Cpu).unwrap();
    assert_eq!(second.state_step, 3);
    second.run(None, &mut Silent).unwrap();

    let losses = |t: &Trainer| {
        t.metrics
            .steps
            .iter()
            .map(|r| (r.step, r.loss, r.lr))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&whole).len(), 6);
    for ((sa, la, ra), (sb, lb, rb)) in losses(&whole).into_iter().zip(losses(&second)) {
        assert_eq!((sa, ra), (sb, rb));
        assert!(
            (la - lb).abs() <= 1e-6 * la.abs(),
            "step {sa}: loss {la} uninterrupted vs {lb} resumed"
        );
    }
    assert_eq!(losses(&second).len(), 6);
    for (wa, wb) in weights(&whole).iter().zip(&weights(&second)) {
        let worst = wa
            .iter()
            .zip(wb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-6, "final weights differ by {worst}");
    }
}

#[test]
fn a_non_finite_loss_skips_the_step_and_keeps_the_weights() {
    let dir = Scratch::new("train-test", "nan");
    let mut trainer = Trainer::new(tiny_run(&dir, 50), &Device::Cpu).unwrap();
    // Poison the final norm: every loss becomes NaN.
    let norm_f = trainer
        .model
        .parameters_mut()
        .into_iter()
        .find(|p| p.rank() == 1)
        .unwrap();
    *norm_f = Tensor::full(f32::NAN, norm_f.shape(), &Device::Cpu)
        .unwrap()
        .as_variable();
    let before = weights(&trainer);
    let outcome = trainer.step().unwrap();
    let StepOutcome::Skipped(record) = outcome else {
        panic!("a NaN loss was not skipped")
    };
    assert!(record.reason.contains("NaN"), "{}", record.reason);
    assert_eq!(trainer.metrics.skipped.len(), 1);
    assert!(trainer.metrics.steps.is_empty());
    let after = weights(&trainer);
    for (x, y) in before.iter().flatten().zip(after.iter().flatten()) {
        assert!(
            x.to_bits() == y.to_bits(),
            "a weight changed in a skipped step"
        );
    }
    let mut error = None;
    for _ in 1..MAX_CONSECUTIVE_SKIPS {
        if let Err(e) = trainer.step() {
            error = Some(e.to_string());
            break;
        }
    }
    let error = error.expect("endless NaN steps did not stop the run");
    assert!(error.contains("in a row"), "{error}");
}

#[test]
fn a_short_run_learns_and_writes_checkpoint_and_metrics() {
    let dir = Scratch::new("train-test", "learns");
    let mut trainer = Trainer::new(tiny_run(&dir, 30), &Device::Cpu).unwrap();
    let last = trainer.run(None, &mut Silent).unwrap().unwrap();
    let first = trainer.metrics.evals.first().unwrap().clone();
    let start = trainer.metrics.steps[0].loss as f64;
    assert!(
        last.loss < 0.7 * start,
        "held-out loss {} after 30 steps, training loss {start} at the start",
        last.loss
    );
    assert!(last.loss <= first.loss);
    assert!(last.bpb.is_finite() && last.bpb > 0.0);
    let out = dir.join("out");
    for file in [
        "metrics.json",
        "checkpoint/model.safetensors",
        "checkpoint/optimizer.safetensors",
        "checkpoint/trainer_state.json",
        "checkpoint/tokenizer.json",
        "checkpoint/config.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let reloaded = crsm::model::Backbone::load(&out.join("checkpoint"), &Device::Cpu).unwrap();
    assert_eq!(reloaded.config, trainer.model.config);
}

#[test]
fn unknown_config_keys_are_named() {
    let dir = Scratch::new("train-test", "keys");
    let good: serde_json::Value =
        serde_json::from_str(&tiny_run(&dir, 4).to_json_string().unwrap()).unwrap();
    let mut bad = good.clone();
    bad["training"]["learning_rate"] = 0.1.into();
    let e = RunConfig::from_json_str(&bad.to_string(), "run.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("learning_rate") && e.contains("run.json"), "{e}");
    let mut bad = good.clone();
    bad["model"]["hidden_sise"] = 8.into();
    let e = RunConfig::from_json_str(&bad.to_string(), "run.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("hidden_sise"), "{e}");
    let mut bad = good;
    bad["training"]["warmup_steps"] = 99.into();
    let e = RunConfig::from_json_str(&bad.to_string(), "run.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("warmup_steps"), "{e}");
}

#[test]
fn shipped_configs_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    for name in [
        "nano",
        "small",
        "baseline-27m",
        "rtx2060-recursive",
        "mamba-130m",
    ] {
        let path = root.join(format!("{name}.json"));
        RunConfig::from_json_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
