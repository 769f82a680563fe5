//! Absurd sizes, from a run config or from flags, are refused before anything is allocated: a
//! clear error naming the field and the bytes, in well under the time an allocation of that size
//! would take, never an abort in the allocator (134), the OOM killer (137) or a panic (101).
//! `memtest` counts on the meta device and answers 3 ("does not fit") for a config larger than
//! the machine. Also the messages of `sft`, `generate` and `tokenizer` on inputs they cannot use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crsm-hostile-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs crsm-train, checking it took under 10 s.
fn run(args: &[&str]) -> (Output, String) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args(args)
        .output()
        .expect("crsm-train runs");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{args:?} took {:?}",
        start.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out, stderr)
}

/// A run config with `model` overrides and `training` overrides on a small base.
fn config(dir: &Path, name: &str, model: &str, training: &str) -> String {
    let text = format!(
        r#"{{"model": {{"vocab_size": 256, "hidden_size": 16, "num_hidden_layers": 1 {model}}},
            "training": {{"data": "{d}/data", "tokenizer": "{d}/tokenizer.json",
                          "out_dir": "{d}/run-{name}", "max_steps": 2, "lr": 0.001,
                          "device": "cpu" {training}}}}}"#,
        d = dir.display()
    );
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Failed with exit status 1 and an error naming `field` and a byte count.
fn assert_refused(out: &Output, stderr: &str, field: &str) {
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(field), "no {field} in: {stderr}");
    assert!(
        stderr.contains("bytes") || stderr.contains("overflow"),
        "{stderr}"
    );
}

#[test]
fn absurd_sizes_in_a_config_are_refused_naming_the_field() {
    let dir = temp("config");
    let cases = [
        (
            "hidden",
            r#", "hidden_size": 1000000000"#,
            "",
            "hidden_size",
        ),
        (
            "vocab",
            r#", "vocab_size": 1099511627776"#,
            "",
            "vocab_size",
        ),
        (
            "layers",
            r#", "num_hidden_layers": 1000000000"#,
            "",
            "num_hidden_layers",
        ),
        (
            "depth",
            r#", "crsm_recurrent_depth": 1000000000"#,
            "",
            "crsm_recurrent_depth",
        ),
        (
            "batch",
            "",
            r#", "batch_size": 1000000000000"#,
            "batch_size",
        ),
    ];
    for (name, model, training, field) in cases {
        let c = config(&dir, name, model, training);
        for cmd in [
            &["pretrain", "--config", &c][..],
            &[
                "bench", "train", "--config", &c, "--device", "cpu", "--steps", "1",
            ],
        ] {
            let (out, stderr) = run(cmd);
            assert_refused(&out, &stderr, field);
        }
        // memtest: "does not fit", exit 3, within seconds.
        let (out, stderr) = run(&["memtest", "--config", &c]);
        assert_eq!(out.status.code(), Some(3), "{name}: {stderr}");
        assert!(stderr.contains("does NOT fit"), "{stderr}");
    }
}

#[test]
fn absurd_sizes_from_flags_are_refused_naming_the_flag() {
    let dir = temp("flags");
    let c = config(&dir, "small", "", "");
    let (out, stderr) = run(&["memtest", "--config", &c, "--batch", "1000000000000"]);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("batch_size"), "{stderr}");
    let (out, stderr) = run(&[
        "bench",
        "train",
        "--config",
        &c,
        "--batch",
        "1000000000000",
        "--device",
        "cpu",
    ]);
    assert_refused(&out, &stderr, "batch_size");
    let (out, stderr) = run(&[
        "bench",
        "decode",
        "--d-model",
        "16",
        "--layers",
        "1",
        "--vocab",
        "64",
        "--prompt",
        "1000000000000",
        "--device",
        "cpu",
    ]);
    assert_refused(&out, &stderr, "--prompt");
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, "some text\n").unwrap();
    let (out, stderr) = run(&[
        "tokenizer",
        "--corpus",
        corpus.to_str().unwrap(),
        "--vocab-size",
        "1000000000",
        "--out",
        dir.join("t.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--vocab-size 1000000000"), "{stderr}");
}

/// A config that fits is counted on the meta device and gives the real step's peak (the two
/// agree exactly on the cpu: `tests/memtest.rs` checks the byte counts phase by phase).
#[test]
fn memtest_counts_on_the_meta_device_as_the_real_step_measures() {
    let dir = temp("meta");
    let c = config(
        &dir,
        "fits",
        r#", "num_hidden_layers": 2"#,
        r#", "batch_size": 2, "seq_len": 32"#,
    );
    let (out, stderr) = run(&[
        "memtest", "--config", &c, "--json", "--real", "--budget", "1GiB",
    ]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (counted, real) = (
        report["transient_bytes"].as_u64().unwrap(),
        report["real_peak_bytes"].as_u64().unwrap(),
    );
    let resident = report["resident_bytes"].as_u64().unwrap();
    // The real peak also holds what else the process keeps on the cpu (nothing here).
    let off = ((counted + resident) as f64 - real as f64).abs() / real as f64;
    assert!(off < 0.05, "counted {} real {real}", counted + resident);
}

#[test]
fn the_tokenizer_bad_line_error_suggests_no_flag_it_lacks() {
    let dir = temp("badline");
    let corpus = dir.join("c.jsonl");
    std::fs::write(&corpus, "{\"text\": \"fine\"}\nnot json\n").unwrap();
    let (out, stderr) = run(&[
        "tokenizer",
        "--corpus",
        corpus.to_str().unwrap(),
        "--vocab-size",
        "300",
        "--out",
        dir.join("t.json").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("c.jsonl:2") && !stderr.contains("--bad-lines"),
        "{stderr}"
    );
}

#[test]
fn sft_refuses_shards_without_response_spans() {
    let dir = temp("sft");
    let corpus = dir.join("plain.txt");
    std::fs::write(&corpus, "plain text, no responses here.\n".repeat(50)).unwrap();
    let tok = dir.join("tokenizer.json");
    let (out, stderr) = run(&[
        "tokenizer",
        "--corpus",
        corpus.to_str().unwrap(),
        "--vocab-size",
        "280",
        "--out",
        tok.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{stderr}");
    let (out, stderr) = run(&[
        "prepare",
        "--input",
        corpus.to_str().unwrap(),
        "--tokenizer",
        tok.to_str().unwrap(),
        "--out",
        dir.join("data").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{stderr}");
    let c = config(&dir, "sft", r#", "vocab_size": 280"#, "");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mamba-tiny");
    let (out, stderr) = run(&["sft", "--config", &c, "--init", fixture.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no response spans"), "{stderr}");
}

#[test]
fn generate_says_when_bytes_are_the_tokens() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mamba-tiny");
    assert!(!fixture.join("tokenizer.json").exists());
    let (out, stderr) = run(&[
        "generate",
        "--model",
        fixture.to_str().unwrap(),
        "--prompt",
        "!!",
        "--max-new-tokens",
        "2",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no tokenizer.json") && stderr.contains("bytes"),
        "{stderr}"
    );
}
