//! The training loop on a tiny model and corpus (cpu): a resumed run continues exactly as an
//! uninterrupted one, a non-finite loss skips the step without touching the weights (and too many
//! in a row stop the run with an error), unknown config keys are named, and a short run learns.
//! With `precision: f16` (lavapipe): the same run learns through loss-scale overflows, resumes
//! exactly, and its first step agrees with the f32 step (the loss scale is undone exactly).

#[path = "support/scratch.rs"]
mod scratch;
use scratch::Scratch;
#[path = "support/lavapipe.rs"]
mod lavapipe_device;
use lavapipe_device::lavapipe;

use std::path::Path;

use crsm::data::{BadLinePolicy, ValSource, prepare, train_bpe_on_texts};
use crsm::train::lm_task::LmTask;
use crsm::train::{
    AdamW, AdamWConfig, MAX_CONSECUTIVE_SKIPS, Precision, RunConfig, Silent, StepOutcome, Trainer,
};
use crsm::{Device, Error, Gradients, Tensor};

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

/// `tiny_run` in f16 from `loss_scale_init`, doubling the scale after `growth` good steps.
fn tiny_f16_run(dir: &Path, max_steps: usize, loss_scale_init: f32, growth: usize) -> RunConfig {
    let mut config = tiny_run(dir, max_steps);
    config.training.precision = Precision::F16;
    config.training.loss_scale_init = loss_scale_init;
    config.training.loss_scale_growth_interval = growth;
    config
}

fn weights(trainer: &Trainer<LmTask>) -> Vec<Vec<f32>> {
    trainer
        .task
        .model
        .parameters()
        .iter()
        .map(|p| p.to_vec_f32().unwrap())
        .collect()
}

/// Six steps in one go, and three + resume + three, on `device`: the same losses, rates, loss
/// scales, skips and final weights. Returns the uninterrupted run's metrics.
fn assert_resume_is_exact(
    tag: &str,
    run: impl Fn(&Path) -> RunConfig,
    device: &Device,
) -> crsm::train::metrics::Metrics {
    let (a, b) = (
        Scratch::new("train-test", &format!("{tag}-whole")),
        Scratch::new("train-test", &format!("{tag}-resumed")),
    );
    let mut whole = Trainer::new(run(&a), device).unwrap();
    whole.run(None, &mut Silent).unwrap();

    let config = run(&b);
    let mut first = Trainer::new(config.clone(), device).unwrap();
    first.run(Some(3), &mut Silent).unwrap();
    assert_eq!(first.state_step, 3);
    drop(first);
    let mut second = Trainer::resume(config, device).unwrap();
    assert_eq!(second.state_step, 3);
    second.run(None, &mut Silent).unwrap();

    let losses = |t: &Trainer<LmTask>| {
        t.metrics
            .steps
            .iter()
            .map(|r| (r.step, r.loss, r.lr, r.loss_scale))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&whole).len() + whole.metrics.skipped.len(), 6);
    assert_eq!(whole.metrics.skipped, second.metrics.skipped);
    for ((sa, la, ra, ka), (sb, lb, rb, kb)) in losses(&whole).into_iter().zip(losses(&second)) {
        assert_eq!((sa, ra, ka), (sb, rb, kb));
        assert!(
            (la - lb).abs() <= 1e-6 * la.abs(),
            "step {sa}: loss {la} uninterrupted vs {lb} resumed"
        );
    }
    assert_eq!(losses(&second).len(), losses(&whole).len());
    for (wa, wb) in weights(&whole).iter().zip(&weights(&second)) {
        let worst = wa
            .iter()
            .zip(wb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-6, "final weights differ by {worst}");
    }
    whole.metrics
}

#[test]
fn a_resumed_run_continues_exactly_as_an_uninterrupted_one() {
    assert_resume_is_exact("f32", |dir| tiny_run(dir, 6), &Device::Cpu);
}

#[test]
fn a_resumed_f16_run_continues_exactly_with_its_loss_scale() {
    let Some(gpu) = lavapipe() else { return };
    // 2^22 and 2^21 overflow, two good steps at 2^20 (one before the resume, one after) grow it
    // back to 2^21, which overflows again: a lost scale or counter would change the sequence.
    let m = assert_resume_is_exact("f16", |dir| tiny_f16_run(dir, 6, 4_194_304.0, 2), &gpu);
    let skipped: Vec<usize> = m.skipped.iter().map(|r| r.step).collect();
    assert_eq!(skipped, [1, 2, 5], "{:?}", m.skipped);
}

#[test]
fn an_f16_run_learns_through_loss_scale_overflows() {
    let Some(gpu) = lavapipe() else { return };
    let dir = Scratch::new("train-test", "f16-learns");
    let mut trainer = Trainer::new(tiny_f16_run(&dir, 30, 16_777_216.0, 1000), &gpu).unwrap();
    let last = trainer.run(None, &mut Silent).unwrap().unwrap();
    let skipped = &trainer.metrics.skipped;
    assert!(
        !skipped.is_empty() && skipped.len() < 10,
        "expected a few overflow skips from scale 2^24: {skipped:?}"
    );
    for (k, r) in skipped.iter().enumerate() {
        assert!(r.reason.contains("overflow"), "{}", r.reason);
        assert_eq!(r.loss_scale, Some(16_777_216.0 / 2f32.powi(k as i32 + 1)));
    }
    let scale = skipped.last().unwrap().loss_scale;
    assert!(trainer.metrics.steps.iter().all(|r| r.loss_scale == scale));
    let start = trainer.metrics.steps[0].loss as f64;
    assert!(
        last.loss < 0.7 * start,
        "held-out loss {} after 30 f16 steps, training loss {start} at the start",
        last.loss
    );
}

#[test]
fn an_f16_step_agrees_with_the_f32_step() {
    let Some(gpu) = lavapipe() else { return };
    let (a, b) = (
        Scratch::new("train-test", "step-f32"),
        Scratch::new("train-test", "step-f16"),
    );
    let mut exact = Trainer::new(tiny_run(&a, 4), &gpu).unwrap();
    let mut mixed = Trainer::new(tiny_f16_run(&b, 4, 65536.0, 1000), &gpu).unwrap();
    let (StepOutcome::Took(r32), StepOutcome::Took(r16)) =
        (exact.step().unwrap(), mixed.step().unwrap())
    else {
        panic!("a step was skipped")
    };
    assert_eq!(r16.loss_scale, Some(65536.0));
    assert!(
        (r16.loss - r32.loss).abs() <= 1e-3 * r32.loss,
        "{r16:?} vs {r32:?}"
    );
    // The norm is taken of the scaled gradients and divided by the scale: unscaled again.
    assert!(
        (r16.grad_norm - r32.grad_norm).abs() <= 2e-2 * r32.grad_norm,
        "{r16:?} vs {r32:?}"
    );
    // AdamW's first step moves each weight by about lr * sign(gradient): a weight whose gradient
    // was not unscaled the same way would move differently; f16 rounding flips only a few signs.
    let (w32, w16) = (weights(&exact), weights(&mixed));
    let (mut moved_apart, mut total) = (0usize, 0usize);
    for (x, y) in w32.iter().flatten().zip(w16.iter().flatten()) {
        total += 1;
        if (x - y).abs() > 1e-4 {
            moved_apart += 1;
        }
    }
    assert!(
        moved_apart * 50 <= total,
        "{moved_apart} of {total} weights moved differently in f16"
    );
}

#[test]
fn f16_on_a_device_without_shader_f16_is_refused_naming_the_field() {
    let dir = Scratch::new("train-test", "f16-cpu");
    let e = Trainer::new(tiny_f16_run(&dir, 4, 65536.0, 1000), &Device::Cpu)
        .err()
        .expect("f16 training on the cpu was accepted")
        .to_string();
    assert!(
        e.contains("training.precision") && e.contains("cpu") && e.contains("shader-f16"),
        "{e}"
    );
}

#[test]
fn folding_one_over_the_loss_scale_into_adamw_is_exact() {
    // Gradients scaled by s = 2^16 with grad_scale c / s give bit-identical updates to the
    // unscaled gradients with grad_scale c: scaling by a power of two commutes with rounding.
    let dev = Device::Cpu;
    let n = 257;
    let value = |k: usize| ((k * 37 % 101) as f32 - 50.0) * 1.37e-3;
    let param = Tensor::from_f32((0..n).map(value).collect(), &[n], &dev)
        .unwrap()
        .as_variable();
    let grad: Vec<f32> = (0..n).map(|k| value(k + 11) * 3.1e-2).collect();
    let scale = 65536.0f32;
    let clip = 0.37f32;
    let updated = |g: &[f32], grad_scale: f32| {
        let mut p = param.clone();
        let mut opt = AdamW::new(AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        });
        for _ in 0..3 {
            let mut grads = Gradients::default();
            grads.insert(&p, Tensor::from_f32(g.to_vec(), &[n], &dev).unwrap());
            opt.step(vec![&mut p], &grads, 1e-3, grad_scale).unwrap();
        }
        p.to_vec_f32().unwrap()
    };
    let plain = updated(&grad, clip);
    let scaled: Vec<f32> = grad.iter().map(|g| g * scale).collect();
    let scaled = updated(&scaled, clip / scale);
    assert_eq!(plain, scaled);
}

#[test]
fn a_non_finite_loss_skips_the_step_and_keeps_the_weights() {
    let dir = Scratch::new("train-test", "nan");
    let mut trainer = Trainer::new(tiny_run(&dir, 50), &Device::Cpu).unwrap();
    // Poison the final norm: every loss becomes NaN.
    let norm_f = trainer
        .task
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
            error = Some(e);
            break;
        }
    }
    let error = error.expect("endless NaN steps did not stop the run");
    let message = error.to_string();
    assert!(
        matches!(&error, Error::Diverged { skips, step, last_reason }
            if *skips == MAX_CONSECUTIVE_SKIPS && *step == MAX_CONSECUTIVE_SKIPS && last_reason.contains("NaN")),
        "{error:?}"
    );
    assert!(
        message.contains("in a row") && message.contains("lower training.lr"),
        "{message}"
    );
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
    assert_eq!(reloaded.config, trainer.task.model.config);
}

/// Checkpointing changes no result, so only the model's own setting shows that the trainer applied
/// `training.checkpoint_segments`: on a new run, and on a resumed one from the config (not the
/// checkpoint).
#[test]
fn the_trainer_applies_checkpoint_segments_to_its_model() {
    let dir = Scratch::new("train-test", "segments");
    let mut config = tiny_run(&dir, 2);
    config.training.checkpoint_segments = 2;
    let mut trainer = Trainer::new(config.clone(), &Device::Cpu).unwrap();
    assert_eq!(trainer.task.model.checkpoint_segments(), 2);
    trainer.run(None, &mut Silent).unwrap();
    // The run's lock on its folder goes with it.
    drop(trainer);
    config.training.checkpoint_segments = 3;
    let resumed = Trainer::resume(config, &Device::Cpu).unwrap();
    assert_eq!(resumed.task.model.checkpoint_segments(), 3);
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
    let mut f16 =
        serde_json::from_str::<serde_json::Value>(&tiny_run(&dir, 4).to_json_string().unwrap())
            .unwrap();
    f16["training"]["precision"] = "f16".into();
    let parsed = RunConfig::from_json_str(&f16.to_string(), "run.json").unwrap();
    assert_eq!(parsed.training.precision, Precision::F16);
    assert_eq!(parsed.training.loss_scale_init, 65536.0);
    f16["training"]["precision"] = "bf16".into();
    let e = RunConfig::from_json_str(&f16.to_string(), "run.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bf16") && e.contains("training"), "{e}");
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
        "reasoning-pathstar",
        "reasoning-pathstar-gpu",
        "reasoning-countdown",
        "reasoning-arc",
    ] {
        let path = root.join(format!("{name}.json"));
        let config =
            RunConfig::from_json_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A reasoning run's generator parameters are ones `tasks make` takes.
        if let Some(t) = &config.tasks {
            let splits = [t.train.clone(), t.val.clone()]
                .into_iter()
                .chain(t.held_out.iter().map(|h| h.split()));
            for split in splits {
                crsm::tasks::make(
                    &t.family,
                    2,
                    split.seed,
                    &split.make_params(),
                    &Default::default(),
                )
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    }
}

#[test]
fn a_training_seed_moves_every_output_and_shares_the_data() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/reasoning-pathstar.json");
    let base = RunConfig::from_json_file(&path).unwrap();
    let c = base.with_training_seed(3);
    assert_eq!(c.training.seed, 3);
    assert_eq!(c.training.out_dir, "runs/pathstar-seed3");
    assert_eq!(
        c.distill.as_ref().unwrap().out_dir,
        "runs/pathstar-seed3/distill"
    );
    assert_eq!(
        c.assemble.as_ref().unwrap().out_dir,
        "runs/pathstar-seed3/crsm"
    );
    assert_eq!(
        c.critic.as_ref().unwrap().out_dir,
        "runs/pathstar-seed3/critic"
    );
    assert_eq!(
        c.distill.as_ref().unwrap().seed,
        base.distill.as_ref().unwrap().seed + 3
    );
    // Shared: the shards, the tokenizer and the problems.
    assert_eq!(c.training.data, base.training.data);
    assert_eq!(c.training.tokenizer, base.training.tokenizer);
    assert_eq!(c.tasks, base.tasks);
    // An out_dir elsewhere gets the suffix; "runs/pathstar2" is not inside "runs/pathstar".
    let mut other = base.clone();
    other.assemble.as_mut().unwrap().out_dir = "runs/pathstar2".into();
    assert_eq!(
        other.with_training_seed(1).assemble.unwrap().out_dir,
        "runs/pathstar2-seed1"
    );
}
