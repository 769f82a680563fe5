//! `crsm-train distill` and `critic` end to end on a tiny run: pretrain a few steps, distill,
//! train the critic, and the reports, the traces, the plot and both checkpoints are there; the stage refuses a run file without a
//! `distill` section and a folder without a stage-1 checkpoint, naming what to do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crsm::data::{BadLinePolicy, ValSource, prepare, train_bpe_on_texts};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crsm-distill-{}-{name}", std::process::id()));
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

/// A tiny run file over freshly prepared shards; `distill` is the stage's section (or none).
fn run_file(
    dir: &Path,
    distill: Option<serde_json::Value>,
    critic: Option<serde_json::Value>,
) -> PathBuf {
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
    let mut json = serde_json::json!({
        "model": {"vocab_size": tok.vocab_size(), "hidden_size": 16, "num_hidden_layers": 2, "state_size": 4},
        "training": {"data": dir.join("data"), "tokenizer": tok_path, "out_dir": dir.join("run"),
                     "batch_size": 2, "seq_len": 16, "max_steps": 4, "lr": 0.01,
                     "eval_every": 4, "eval_tokens": 64, "checkpoint_every": 4, "device": "cpu"}
    });
    if let Some(d) = distill {
        json["distill"] = d;
    }
    if let Some(c) = critic {
        json["critic"] = c;
    }
    let path = dir.join("run.json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

fn crsm_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args(args)
        .output()
        .expect("crsm-train runs")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn distill_collects_traces_trains_the_dynamics_and_reports_the_fit() {
    let dir = scratch("whole");
    let distill = serde_json::json!({
        "out_dir": dir.join("distill"), "windows": 12, "val_windows": 4, "window_len": 12,
        "windows_per_part": 5, "trace_batch": 4, "unroll": 3,
        "training": {"batch_size": 8, "max_steps": 6, "lr": 0.003, "eval_every": 3,
                     "eval_tokens": 0, "checkpoint_every": 3},
        "broadcaster": {"pairs_per_window": 2, "top_k": 3, "rank": 4, "channel_rank": 2,
            "training": {"batch_size": 4, "max_steps": 4, "lr": 0.003, "eval_every": 2,
                         "eval_tokens": 0, "checkpoint_every": 2}}
    });
    let critic = serde_json::json!({
        "out_dir": dir.join("critic"), "horizon": 3, "gamma": 0.5, "hidden": 4,
        "training": {"batch_size": 8, "max_steps": 4, "lr": 0.003, "eval_every": 2,
                     "eval_tokens": 0, "checkpoint_every": 2}
    });
    let config = run_file(&dir, Some(distill), Some(critic));
    // Before stage 1 there is nothing to distill from.
    let out = crsm_train(&["distill", "--config", s(&config), "--device", "cpu"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("training.out_dir") && stderr.contains("pretrain"),
        "{stderr}"
    );

    let out = crsm_train(&["pretrain", "--config", s(&config), "--device", "cpu"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crsm_train(&["distill", "--config", s(&config), "--device", "cpu"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("distill: dynamics_r2_1="), "{stdout}");
    for name in [
        "dynamics_r2_1",
        "dynamics_r2_8",
        "linear_r2_1",
        "linear_r2_8",
    ] {
        let value: f64 = last
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse()
            .unwrap();
        assert!(value.is_finite() && value <= 1.0, "{name}={value}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("distill/fit.json")).unwrap())
            .unwrap();
    assert_eq!(report["identity"]["fits"][0]["r2_change"], 0.0);
    // The broadcaster: trained on the state pairs, reported on the held-out ones.
    let b = &report["broadcaster"];
    assert_eq!(b["pairs"], 8, "4 held-out windows x 2 pairs");
    assert!(b["delta_r2_all"].as_f64().unwrap() <= 1.0, "{b}");
    assert_eq!(b["after"].as_array().unwrap().len(), 2, "{b}");
    assert!(dir.join("distill/traces/train/pairs-00002.bin").is_file());
    assert!(dir.join("distill/broadcaster.safetensors").is_file());
    assert!(stdout.contains("R^2 of the state deltas"), "{stdout}");
    assert!(
        dir.join("distill/traces/train/part-00002.bin").is_file(),
        "12 windows in parts of 5"
    );
    assert!(
        dir.join("distill/dynamics/checkpoint/dynamics.safetensors")
            .is_file()
    );
    // Stage 4 on the same traces: a report, a calibration plot and the summary line.
    let out = crsm_train(&["critic", "--config", s(&config), "--device", "cpu"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("critic: pearson_mean="), "{stdout}");
    assert!(dir.join("critic/calibration.png").is_file());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("critic/critic.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["heads"].as_array().unwrap().len(),
        2,
        "one head per layer"
    );
    assert!(
        dir.join("critic/heads/checkpoint/critic.safetensors")
            .is_file()
    );
    // Again without --resume: the dynamics' run is not overwritten silently.
    let out = crsm_train(&["distill", "--config", s(&config), "--device", "cpu"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--resume") && stderr.contains("--overwrite"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_run_file_without_a_distill_section_is_refused_by_name() {
    let dir = scratch("no-section");
    let config = run_file(&dir, None, None);
    let out = crsm_train(&["distill", "--config", s(&config), "--device", "cpu"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("distill"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
