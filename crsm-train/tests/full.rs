//! `crsm-train full` end to end on a tiny run: the four stages run and end in one summary line
//! and an assembled folder with the critic; run again, every stage is skipped; a changed section
//! re-runs its stage and the ones after it, never the ones before; `assemble` alone and the
//! strict loader agree on the folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crsm::data::{BadLinePolicy, ValSource, prepare, train_bpe_on_texts};
use crsm::latent::checkpoint::{CrsmCheckpoint, Stage};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crsm-full-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn corpus() -> String {
    let words = [
        "the", "lady", "said", "that", "her", "sister", "was", "very", "happy",
    ];
    (0..2000)
        .map(|i| words[(i * 7 + i / 3) % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The tiny run file: every stage's section, all in `dir`.
fn run_json(dir: &Path) -> serde_json::Value {
    let tok = train_bpe_on_texts(std::iter::once(corpus()), 300).unwrap();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path).unwrap();
    std::fs::write(dir.join("text.txt"), corpus()).unwrap();
    prepare(
        &dir.join("text.txt"),
        &tok_path,
        &dir.join("data"),
        &ValSource::Fraction(0.2),
        BadLinePolicy::Fail,
    )
    .unwrap();
    serde_json::json!({
        "model": {"vocab_size": tok.vocab_size(), "hidden_size": 16, "num_hidden_layers": 2, "state_size": 4},
        "training": {"data": dir.join("data"), "tokenizer": tok_path, "out_dir": dir.join("run"),
                     "batch_size": 2, "seq_len": 16, "max_steps": 4, "lr": 0.01,
                     "eval_every": 4, "eval_tokens": 64, "checkpoint_every": 4, "device": "cpu"},
        "distill": {"out_dir": dir.join("distill"), "windows": 12, "val_windows": 4, "window_len": 12,
                    "windows_per_part": 5, "trace_batch": 4, "unroll": 3,
                    "training": {"batch_size": 8, "max_steps": 4, "lr": 0.003, "eval_every": 2,
                                 "eval_tokens": 0, "checkpoint_every": 2}},
        "assemble": {"out_dir": dir.join("crsm")},
        "critic": {"out_dir": dir.join("critic"), "horizon": 3, "gamma": 0.5, "hidden": 4,
                   "training": {"batch_size": 8, "max_steps": 4, "lr": 0.003, "eval_every": 2,
                                "eval_tokens": 0, "checkpoint_every": 2}}
    })
}

fn write(path: &Path, json: &serde_json::Value) {
    std::fs::write(path, json.to_string()).unwrap();
}

fn crsm_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args(args)
        .output()
        .expect("crsm-train runs")
}

/// Runs `full`, requires success, and returns (stderr, the last stdout line).
fn full(config: &Path) -> (String, String) {
    full_with(config, &[])
}

fn full_with(config: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "full",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    let out = crsm_train(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        stderr,
        stdout.lines().last().unwrap_or_default().to_string(),
    )
}

fn skipped(stderr: &str) -> Vec<&str> {
    ["pretrain", "distill", "assemble", "critic"]
        .into_iter()
        .filter(|s| stderr.contains(&format!("{s}: skipped")))
        .collect()
}

#[test]
fn full_runs_the_four_stages_then_skips_what_is_current() {
    let dir = scratch("stages");
    let mut json = run_json(&dir);
    let config = dir.join("run.json");
    write(&config, &json);

    let (stderr, last) = full(&config);
    assert!(skipped(&stderr).is_empty(), "{stderr}");
    assert!(last.starts_with("full: held_out_bpb="), "{last}");
    let keys: Vec<&str> = last
        .split_whitespace()
        .skip(1)
        .map(|kv| kv.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "held_out_bpb",
            "dynamics_r2_1",
            "dynamics_r2_8",
            "linear_r2_8",
            "critic_pearson",
            "minutes"
        ]
    );
    let bpb: f64 = last
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("held_out_bpb="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(bpb.is_finite() && bpb > 0.0, "{last}");
    // The folder ends with the critic (stage 3 ran before it, then again after it).
    let ckpt = CrsmCheckpoint::load(&dir.join("crsm"), &crsm::Device::Cpu).unwrap();
    assert_eq!(
        ckpt.stages(),
        [
            Stage::Backbone,
            Stage::Dynamics,
            Stage::Critic,
            Stage::Gates
        ]
    );
    for d in ["run", "distill", "crsm", "critic"] {
        assert!(dir.join(d).join("stage.json").is_file(), "{d}/stage.json");
    }

    // Again: every stage skipped, the same figures.
    let (stderr, again) = full(&config);
    assert_eq!(
        skipped(&stderr),
        ["pretrain", "distill", "assemble", "critic"],
        "{stderr}"
    );
    let figures = |line: &str| line.rsplit_once(" minutes=").unwrap().0.to_string();
    assert_eq!(figures(&again), figures(&last));

    // A changed critic section: the critic runs, nothing before it; stage 3 assembles without
    // the stale heads, and the assembly after stage 4 adds the new ones.
    json["critic"]["training"]["max_steps"] = 6.into();
    write(&config, &json);
    let (stderr, _) = full(&config);
    assert_eq!(skipped(&stderr), ["pretrain", "distill"], "{stderr}");
    assert!(
        stderr.contains("stage 3/4 assemble: backbone, dynamics, gates")
            && stderr.contains("stage 4/4 assemble: backbone, dynamics, critic, gates"),
        "{stderr}"
    );

    // The dynamics' loop changed: distill and the assembly run again; the critic reads only the
    // traces, which come out the same, so it stays current.
    json["distill"]["training"]["max_steps"] = 6.into();
    write(&config, &json);
    let (stderr, _) = full(&config);
    assert_eq!(skipped(&stderr), ["pretrain", "critic"], "{stderr}");
    // Other traces: distill, assemble and critic run; pretrain is skipped.
    json["distill"]["windows"] = 10.into();
    write(&config, &json);
    let (stderr, _) = full(&config);
    assert_eq!(skipped(&stderr), ["pretrain"], "{stderr}");

    // A changed stage-1 section: everything runs again.
    json["training"]["lr"] = 0.02.into();
    write(&config, &json);
    let (stderr, _) = full(&config);
    assert!(skipped(&stderr).is_empty(), "{stderr}");

    // A damaged output is not current: the stage that wrote it runs again.
    let crsm_file = dir.join("crsm").join(crsm::latent::CRSM_FILE);
    std::fs::write(&crsm_file, b"not a checkpoint").unwrap();
    let (stderr, _) = full(&config);
    assert_eq!(
        skipped(&stderr),
        ["pretrain", "distill", "critic"],
        "{stderr}"
    );
    CrsmCheckpoint::load(&dir.join("crsm"), &crsm::Device::Cpu).unwrap();

    // `assemble` alone writes the same stages, and refuses to replace a folder it did not write.
    let out = crsm_train(&[
        "assemble",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("assemble: stages=backbone,dynamics,critic,gates"),
        "{stdout}"
    );
    json["assemble"]["out_dir"] = dir.join("distill").to_str().unwrap().into();
    write(&config, &json);
    let out = crsm_train(&[
        "assemble",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("assemble.out_dir"), "{stderr}");
    assert!(
        dir.join("distill/fit.json").is_file(),
        "nothing of it deleted"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `--resume` continues a stage's checkpoints only when they were made from the inputs it reads
/// now: after stage 1 went on to more steps, distill and critic start over (their old runs finished, and
/// continuing them would keep dynamics and heads of the old backbone); a stage cut short with
/// the same inputs continues.
#[test]
fn full_resume_never_continues_a_stage_of_other_inputs() {
    let dir = scratch("resume");
    let mut json = run_json(&dir);
    let config = dir.join("run.json");
    write(&config, &json);
    full(&config);
    let over = |stderr: &str, stage: &str| {
        stderr.contains(&format!("{stage}: its checkpoints in"))
            && stderr.contains("starting it over")
    };

    // Stage 1 continued to more steps: a new backbone.
    json["training"]["max_steps"] = 6.into();
    write(&config, &json);
    let (stderr, _) = full_with(&config, &["--resume"]);
    assert!(skipped(&stderr).is_empty(), "{stderr}");
    assert!(
        over(&stderr, "distill") && over(&stderr, "critic"),
        "{stderr}"
    );
    let pending = std::fs::read_to_string(dir.join("distill/stage.pending.json")).unwrap();
    let manifest = std::fs::read_to_string(dir.join("distill/stage.json")).unwrap();
    let backbone = |text: &str| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["inputs"]["backbone"].as_str().unwrap().to_string()
    };
    assert_eq!(backbone(&pending), backbone(&manifest));

    // The critic "cut short" (its manifest gone, its checkpoints and pending inputs kept):
    // resumed, not started over.
    std::fs::remove_file(dir.join("critic/stage.json")).unwrap();
    let (stderr, _) = full_with(&config, &["--resume"]);
    assert_eq!(skipped(&stderr), ["pretrain", "distill"], "{stderr}");
    assert!(!over(&stderr, "critic"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn full_refuses_a_run_file_without_the_later_sections_by_name() {
    let dir = scratch("sections");
    let mut json = run_json(&dir);
    json.as_object_mut().unwrap().remove("assemble");
    let config = dir.join("run.json");
    write(&config, &json);
    let out = crsm_train(&[
        "full",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`assemble` section"), "{stderr}");
    // An unknown key in the new section is still an error naming it.
    json["assemble"] = serde_json::json!({"out_dir": dir.join("crsm"), "outdir": "x"});
    write(&config, &json);
    let out = crsm_train(&[
        "full",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("outdir"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
