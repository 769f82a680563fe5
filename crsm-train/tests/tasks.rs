//! `crsm-train tasks make|check` end to end: files written, splits disjoint, answers verified, a
//! wrong answer and a bad line named by their line numbers.

use std::path::PathBuf;
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crsm-tasks-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn crsm_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn make_and_check_round_trip_and_name_bad_lines() {
    let dir = scratch("round-trip");
    let (train, test) = (dir.join("train.jsonl"), dir.join("test.jsonl"));
    let s = |p: &PathBuf| p.display().to_string();
    let out = crsm_train(&[
        "tasks",
        "make",
        "--family",
        "pathstar",
        "--n",
        "100",
        "--seed",
        "1",
        "--out",
        &s(&train),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crsm_train(&[
        "tasks",
        "make",
        "--family",
        "pathstar",
        "--n",
        "50",
        "--seed",
        "1",
        "--param",
        "d=3",
        "--exclude",
        &s(&train),
        "--out",
        &s(&test),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&test).unwrap();
    assert_eq!(text.lines().count(), 50);
    let out = crsm_train(&["tasks", "check", &s(&test)]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("50 of 50 answers verify"));
    // A wrong answer on line 3 fails the check, naming the line.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut p: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    p["answer"] = serde_json::json!("1,2,3");
    lines[2] = p.to_string();
    std::fs::write(&test, lines.join("\n")).unwrap();
    let out = crsm_train(&["tasks", "check", &s(&test)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lines [3]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A line that is not a problem is named with its number.
    lines[4] = "{\"family\": \"pathstar\"".into();
    std::fs::write(&test, lines.join("\n")).unwrap();
    let out = crsm_train(&["tasks", "check", &s(&test)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("test.jsonl") && err.contains('5'), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
