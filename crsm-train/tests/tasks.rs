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

#[test]
fn arc_problems_and_arc_agi_tasks_make_and_check() {
    let dir = scratch("arc");
    let s = |p: &PathBuf| p.display().to_string();
    let (train, test, agi) = (
        dir.join("train.jsonl"),
        dir.join("test.jsonl"),
        dir.join("agi.jsonl"),
    );
    let ok = |out: &Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let make = |seed: &str, extra: &[&str], out: &PathBuf| {
        let mut args = vec![
            "tasks", "make", "--family", "arc", "--n", "40", "--seed", seed,
        ];
        args.extend_from_slice(extra);
        let out = s(out);
        args.extend_from_slice(&["--out", &out]);
        crsm_train(&args)
    };
    ok(&make("1", &["--param", "ops=single"], &train));
    // Held out: compositions of two on 6 x 6 grids, none of the training prompts.
    let exclude = s(&train);
    let held_out = [
        "--param",
        "ops=pair",
        "--param",
        "min_size=6",
        "--param",
        "max_size=6",
        "--exclude",
        &exclude,
    ];
    ok(&make("1", &held_out, &test));
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&test)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["family"], "arc");
    assert_eq!(
        (
            line["meta"]["ops"].as_str(),
            line["meta"]["min_size"].as_u64()
        ),
        (Some("pair"), Some(6))
    );
    assert!(line["prompt"].as_str().unwrap().ends_with('='));
    assert!(ok(&crsm_train(&["tasks", "check", &s(&test)])).contains("40 of 40 answers verify"));
    // The ARC-AGI-1 evaluation pairs that fit 1024 characters.
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/arc/arc_agi_1_aa922be.json");
    let said = ok(&crsm_train(&[
        "tasks",
        "arc-agi",
        "--file",
        &s(&file),
        "--max-chars",
        "1024",
        "--out",
        &s(&agi),
    ]));
    assert!(
        said.contains("of 419 evaluation test pairs fit in 1024 characters"),
        "{said}"
    );
    let kept = std::fs::read_to_string(&agi).unwrap().lines().count();
    assert!(
        said.starts_with(&format!("tasks arc-agi: {kept} of 419")),
        "{said}"
    );
    assert!(ok(&crsm_train(&["tasks", "check", &s(&agi)])).contains(&format!("{kept} of {kept}")));
    // A broken reference answer is an error naming the file and line.
    let mut lines: Vec<String> = std::fs::read_to_string(&agi)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut p: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    p["answer"] = serde_json::json!("12/3");
    lines[1] = p.to_string();
    std::fs::write(&agi, lines.join("\n")).unwrap();
    let out = crsm_train(&["tasks", "check", &s(&agi)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("agi.jsonl: line 2") && err.contains("not a grid"),
        "{err}"
    );
    let out = crsm_train(&[
        "tasks",
        "arc-agi",
        "--split",
        "test",
        "--file",
        &s(&file),
        "--out",
        &s(&agi),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("training or evaluation"));
    std::fs::remove_dir_all(&dir).ok();
}
