//! One run per folder, as a user meets it on the command line: a folder holding a run is not
//! overwritten without `--overwrite`, a second run on a locked folder is refused naming the
//! holder's PID (a stale lock is taken over, and the lock goes when the run ends), an unwritable
//! folder is refused before the first step, and a resume with other data or tokenizer is refused
//! while changed hyper-parameters are named in a warning.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crsm::data::{BadLinePolicy, ValSource, prepare, train_bpe_on_texts};

/// A fresh folder per test, removed at the end (unless the test fails, to look inside).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crsm-run-folder-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn corpus(seed: usize) -> String {
    let words = [
        "the", "lady", "said", "that", "her", "sister", "was", "very", "happy",
    ];
    (0..300)
        .map(|i| words[(i * 7 + seed + i / 3) % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tokenizer `dir/{name}.json` and shards `dir/{name}-data` from `corpus(seed)`; returns the
/// tokenizer's vocabulary size.
fn make_data(dir: &Path, name: &str, seed: usize, vocab: usize) -> usize {
    let tok = train_bpe_on_texts(std::iter::once(corpus(seed)), vocab).unwrap();
    let tok_path = dir.join(format!("{name}.json"));
    tok.save(&tok_path).unwrap();
    let text = dir.join(format!("{name}.txt"));
    std::fs::write(&text, corpus(seed)).unwrap();
    prepare(
        &text,
        &tok_path,
        &dir.join(format!("{name}-data")),
        &ValSource::Fraction(0.2),
        BadLinePolicy::Fail,
    )
    .unwrap();
    tok.vocab_size()
}

/// A run config `dir/{file}` training a tiny model on data `name`, writing to `out`, with
/// `training` fields overridden by `extra`.
/// Instruction data (loss on the responses only) for `sft`, tokenized with `name`'s tokenizer
/// into `{name}-sft-data`.
fn make_sft_data(dir: &Path, name: &str) -> PathBuf {
    let jsonl = dir.join(format!("{name}-sft.jsonl"));
    let lines: Vec<String> = (0..40)
        .map(|i| {
            serde_json::json!({"instruction": corpus(i)[..40].to_string(), "input": "",
                               "output": corpus(i + 1)[..60].to_string()})
            .to_string()
        })
        .collect();
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let data = dir.join(format!("{name}-sft-data"));
    prepare(
        &jsonl,
        &dir.join(format!("{name}.json")),
        &data,
        &ValSource::Fraction(0.2),
        BadLinePolicy::Fail,
    )
    .unwrap();
    data
}

fn config(dir: &Path, file: &str, name: &str, out: &Path, extra: serde_json::Value) -> PathBuf {
    let mut json = serde_json::json!({
        "model": {"vocab_size": 300, "hidden_size": 8, "num_hidden_layers": 1, "state_size": 2},
        "training": {"data": dir.join(format!("{name}-data")), "tokenizer": dir.join(format!("{name}.json")),
                     "out_dir": out, "batch_size": 2, "seq_len": 8, "max_steps": 4, "lr": 0.01,
                     "eval_every": 2, "eval_tokens": 32, "checkpoint_every": 2, "device": "cpu"}
    });
    for (k, v) in extra.as_object().unwrap() {
        json["training"][k] = v.clone();
    }
    let path = dir.join(file);
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

fn crsm_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args(args)
        .output()
        .expect("crsm-train runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The error of a run that must fail cleanly (exit 1, not a panic), with no training done.
fn refused(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("step"),
        "trained before refusing: {out:?}"
    );
    stderr
}

fn state_step(out: &Path) -> u64 {
    let text = std::fs::read_to_string(out.join("checkpoint/trainer_state.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["step"]
        .as_u64()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_folder_holding_a_run_is_not_overwritten_without_overwrite() {
    let dir = scratch("overwrite");
    make_data(&dir, "a", 0, 300);
    let out = dir.join("out");
    let c = config(&dir, "run.json", "a", &out, serde_json::json!({}));
    ok(crsm_train(&[
        "pretrain",
        "--config",
        s(&c),
        "--stop-at",
        "2",
    ]));
    assert_eq!(state_step(&out), 2);

    let e = refused(crsm_train(&["pretrain", "--config", s(&c)]));
    assert!(
        e.contains(s(&out)) && e.contains("--resume") && e.contains("--overwrite"),
        "{e}"
    );
    let init = out.join("checkpoint");
    let sft_data = make_sft_data(&dir, "a");
    let sft = config(
        &dir,
        "sft.json",
        "a",
        &out,
        serde_json::json!({"data": sft_data}),
    );
    let e = refused(crsm_train(&[
        "sft",
        "--config",
        s(&sft),
        "--init",
        s(&init),
    ]));
    assert!(e.contains("--resume") && e.contains("--overwrite"), "{e}");
    assert_eq!(
        state_step(&out),
        2,
        "the refused runs touched the checkpoint"
    );

    let both = crsm_train(&["pretrain", "--config", s(&c), "--resume", "--overwrite"]);
    assert!(!both.status.success());

    let line = ok(crsm_train(&[
        "pretrain",
        "--config",
        s(&c),
        "--overwrite",
        "--stop-at",
        "1",
    ]));
    assert!(line.starts_with("step 1:"), "{line}");
    assert_eq!(state_step(&out), 1, "--overwrite started over");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_run_on_a_locked_folder_is_refused_naming_the_holder() {
    let dir = scratch("lock");
    make_data(&dir, "a", 0, 300);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let c = config(&dir, "run.json", "a", &out, serde_json::json!({}));
    let lock_path = out.join("run.lock");

    // Another process holds the lock (this test process, as a run would: flock + its PID).
    {
        let lock = std::fs::File::create(&lock_path).unwrap();
        lock.try_lock().unwrap();
        std::fs::write(&lock_path, std::process::id().to_string()).unwrap();
        let e = refused(crsm_train(&["pretrain", "--config", s(&c)]));
        assert!(
            e.contains(&format!("process {}", std::process::id())) && e.contains("run.lock"),
            "{e}"
        );
        assert!(!out.join("checkpoint").exists());
    }

    // A stale lock: its process is gone (and with it the lock), the file stayed.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(&lock_path, dead.to_string()).unwrap();
    ok(crsm_train(&[
        "pretrain",
        "--config",
        s(&c),
        "--stop-at",
        "2",
    ]));
    assert!(!lock_path.exists(), "the lock was not released at the end");

    // Released on an error too (here: the config's tokenizer is missing).
    let broken = config(
        &dir,
        "broken-run.json",
        "nowhere",
        &out,
        serde_json::json!({}),
    );
    let e = refused(crsm_train(&[
        "pretrain",
        "--config",
        s(&broken),
        "--resume",
    ]));
    assert!(e.contains("nowhere"), "{e}");
    assert!(
        !lock_path.exists(),
        "the lock was not released after an error"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_out_dir_is_refused_before_the_first_step() {
    let dir = scratch("unwritable");
    make_data(&dir, "a", 0, 300);
    // A read-only folder; root writes into those anyway, but nobody can create files in /proc.
    let ro = dir.join("read-only");
    std::fs::create_dir_all(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&ro, perms).unwrap();
    let out = if std::fs::write(ro.join("probe"), "").is_ok() {
        PathBuf::from("/proc/self")
    } else {
        ro.clone()
    };
    let c = config(&dir, "run.json", "a", &out, serde_json::json!({}));
    let e = refused(crsm_train(&["pretrain", "--config", s(&c)]));
    assert!(e.contains(s(&out)) && e.contains("not writable"), "{e}");
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&ro, perms).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_resume_with_other_data_is_refused_and_changed_settings_are_named() {
    let dir = scratch("drift");
    make_data(&dir, "a", 0, 300);
    make_data(&dir, "b", 3, 290);
    // Other shards made with the same tokenizer.
    let other = dir.join("a2.txt");
    std::fs::write(&other, corpus(5)).unwrap();
    prepare(
        &other,
        &dir.join("a.json"),
        &dir.join("a2-data"),
        &ValSource::Fraction(0.2),
        BadLinePolicy::Fail,
    )
    .unwrap();
    std::fs::copy(dir.join("a.json"), dir.join("a2.json")).unwrap();
    let out = dir.join("out");
    let none = serde_json::json!({});
    let c = config(&dir, "run.json", "a", &out, none.clone());
    ok(crsm_train(&[
        "pretrain",
        "--config",
        s(&c),
        "--stop-at",
        "2",
    ]));

    let b = config(&dir, "run-b.json", "b", &out, none.clone());
    let e = refused(crsm_train(&["pretrain", "--config", s(&b), "--resume"]));
    assert!(e.contains("training.tokenizer"), "{e}");
    let a2 = config(&dir, "run-a2.json", "a2", &out, none);
    let e = refused(crsm_train(&["pretrain", "--config", s(&a2), "--resume"]));
    assert!(e.contains("training.data"), "{e}");
    assert_eq!(state_step(&out), 2);

    let changed = config(
        &dir,
        "run-changed.json",
        "a",
        &out,
        serde_json::json!({"batch_size": 3, "lr": 0.02, "seed": 9}),
    );
    let run = crsm_train(&["pretrain", "--config", s(&changed), "--resume"]);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("warning"))
        .unwrap_or_else(|| panic!("no warning in {stderr}"));
    for field in ["training.batch_size", "training.lr", "training.seed"] {
        assert!(warning.contains(field), "{warning}");
    }
    assert!(!warning.contains("training.max_steps"), "{warning}");
    std::fs::remove_dir_all(&dir).unwrap();
}
