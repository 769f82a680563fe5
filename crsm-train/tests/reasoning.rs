//! A reasoning run end to end on a tiny model: `full` with a `tasks` section writes disjoint
//! problem files, a tokenizer and SFT shards (stage 0), trains the four stages with the critic
//! on task reward, and `eval` then runs every mode and every ablation on held-out problems,
//! with intervals and paired tests; its verdicts never depend on the reference answers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crsm-reasoning-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn crsm_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args(args)
        .output()
        .expect("crsm-train runs")
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn run_json(dir: &Path) -> serde_json::Value {
    let p = serde_json::json!({"d": 2, "l": 2, "n": 12});
    let loop_ = |steps: usize| {
        serde_json::json!({"batch_size": 8, "max_steps": steps, "lr": 0.003, "eval_every": steps,
                           "eval_tokens": 0, "checkpoint_every": steps})
    };
    serde_json::json!({
        "model": {"vocab_size": 300, "hidden_size": 16, "num_hidden_layers": 2, "state_size": 4},
        "training": {"data": dir.join("data"), "tokenizer": dir.join("tokenizer.json"),
                     "out_dir": dir.join("run"), "batch_size": 4, "seq_len": 32, "max_steps": 6,
                     "lr": 0.01, "eval_every": 6, "eval_tokens": 256, "checkpoint_every": 6,
                     "device": "cpu"},
        "tasks": {"family": "pathstar", "dir": dir.join("tasks"),
                  "train": {"n": 200, "seed": 1, "params": p},
                  "val": {"n": 20, "seed": 2, "params": p},
                  "held_out": [{"name": "same", "n": 12, "seed": 3, "params": p},
                               {"name": "d3", "n": 6, "seed": 4, "params": {"d": 3, "l": 2, "n": 12}}],
                  "critic": {"n": 24, "seed": 5, "params": p},
                  "critic_problems": 16, "critic_val_problems": 8, "max_answer_tokens": 12},
        "distill": {"out_dir": dir.join("distill"), "windows": 12, "val_windows": 4, "window_len": 12,
                    "windows_per_part": 6, "trace_batch": 4, "unroll": 3, "training": loop_(4),
                    "broadcaster": {"pairs_per_window": 1, "top_k": 4, "rank": 4, "channel_rank": 2,
                                    "training": loop_(4)}},
        "assemble": {"out_dir": dir.join("crsm")},
        "critic": {"out_dir": dir.join("critic"), "hidden": 4, "training": loop_(4)}
    })
}

fn prompts(file: &Path) -> HashSet<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["prompt"].to_string())
        .collect()
}

#[test]
fn a_pathstar_run_trains_on_task_reward_and_eval_runs_every_mode_and_ablation() {
    let dir = scratch("run");
    let config = dir.join("run.json");
    std::fs::write(&config, run_json(&dir).to_string()).unwrap();
    let out = crsm_train(&[
        "full",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = ok(&out);
    assert!(stderr.contains("stage 0/4 tasks"), "{stderr}");
    assert!(
        stdout.contains("task reward: the stage-1 model's sampled answers"),
        "{stdout}"
    );

    // Held-out splits and val never share a prompt with training.
    let tasks = dir.join("tasks");
    let train = prompts(&tasks.join("train.jsonl"));
    assert_eq!(train.len(), 200);
    for split in ["val.jsonl", "held-out-same.jsonl", "held-out-d3.jsonl"] {
        let p = prompts(&tasks.join(split));
        assert!(p.is_disjoint(&train), "{split} shares prompts with train");
    }
    // The critic's problems are new to the backbone and to every evaluation split, and they are
    // the ones the critic's targets come from.
    let critic = prompts(&tasks.join("critic.jsonl"));
    assert_eq!(critic.len(), 24);
    for split in [
        "train.jsonl",
        "val.jsonl",
        "held-out-same.jsonl",
        "held-out-d3.jsonl",
    ] {
        let p = prompts(&tasks.join(split));
        assert!(p.is_disjoint(&critic), "{split} shares prompts with critic");
    }
    assert!(
        stderr.contains("answers 16 problems of") && stderr.contains("critic.jsonl (sampled)"),
        "{stderr}"
    );
    // The critic's report carries the reward rates.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("critic/critic.json")).unwrap())
            .unwrap();
    assert!(report["task_success"][0].as_f64().is_some(), "{report}");
    // ... and the fit by answer token, which covers every held-out position (answers are
    // shorter than the steps reported).
    let steps = report["by_answer_step"].as_array().unwrap();
    assert_eq!(steps[0]["step"], 0, "{report}");
    let covered: u64 = steps.iter().map(|s| s["positions"].as_u64().unwrap()).sum();
    assert_eq!(
        covered,
        report["held_out_positions"].as_u64().unwrap(),
        "{report}"
    );

    // Every mode and ablation, two seeds, on the held-out problems.
    let held_out = tasks.join("held-out-same.jsonl");
    let report_md = dir.join("report/eval.md");
    let eval = |tasks: &Path, extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "eval",
            "--model",
            dir.join("crsm").to_str().unwrap().to_string().leak(),
            "--tasks",
            tasks.to_str().unwrap().to_string().leak(),
            "--device",
            "cpu",
            "--json",
            "--simulations",
            "4",
            "--seeds",
            "2",
        ];
        args.extend(extra);
        serde_json::from_str(&ok(&crsm_train(&args))).unwrap()
    };
    let all = eval(
        &held_out,
        &[
            "--deliberate",
            "off,sync,async",
            "--lag",
            "1,2",
            "--ablate",
            "none,no-injection,no-guidance,no-critic,identity-dynamics,exact-dynamics",
            "--out",
            report_md.to_str().unwrap(),
        ],
    );
    // The report names the command that made it, as one would type it again.
    let command = all["command"].as_str().unwrap();
    assert!(
        command.starts_with("crsm-train eval --model ") && command.contains("--lag 1,2"),
        "{command}"
    );
    let variants = all["variants"].as_array().unwrap();
    // off once; sync once per ablation (no lag); async per lag and ablation.
    assert_eq!(variants.len(), 1 + 6 + 2 * 6, "{all}");
    assert_eq!(variants[0]["name"], "off");
    assert!(variants[0]["vs_baseline"].is_null());
    for v in variants {
        let (m, lo, hi) = (
            v["exact_match"].as_f64().unwrap(),
            v["ci95"][0].as_f64().unwrap(),
            v["ci95"][1].as_f64().unwrap(),
        );
        assert!((0.0..=1.0).contains(&m) && lo <= m && m <= hi, "{v}");
        assert!(v["tokens_per_answer"].as_f64().unwrap() >= 1.0, "{v}");
    }
    for v in &variants[1..] {
        let p = v["vs_baseline"][1].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{v}");
    }
    // Sync plans before every token: every plan it makes is received.
    let sync = variants
        .iter()
        .find(|v| v["name"] == "sync, 4 sims")
        .unwrap();
    assert!(sync["plans"]["received"].as_u64().unwrap() > 0, "{sync}");
    for ext in ["md", "json", "png"] {
        assert!(report_md.with_extension(ext).is_file(), "report.{ext}");
    }

    // The planner sees only the model: wrong reference answers change no verdict.
    let text = std::fs::read_to_string(&held_out).unwrap();
    let scrambled: String = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["answer"] = "999".into();
            format!("{v}\n")
        })
        .collect();
    let scrambled_file = dir.join("scrambled.jsonl");
    std::fs::write(&scrambled_file, scrambled).unwrap();
    let args = ["--deliberate", "off,sync"];
    let (a, b) = (eval(&held_out, &args), eval(&scrambled_file, &args));
    for (x, y) in a["variants"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["variants"].as_array().unwrap())
    {
        assert_eq!(x["exact_match"], y["exact_match"]);
        assert_eq!(x["per_model"], y["per_model"]);
    }

    // `arms` reads the same model and problems: one row of shares in [0, 100]%, and the whole
    // path of the goal's arm is what the scrambled answers cannot change either.
    let arms = |tasks: &Path| {
        ok(&crsm_train(&[
            "arms",
            "--model",
            dir.join("crsm").to_str().unwrap(),
            "--tasks",
            tasks.to_str().unwrap(),
            "--device",
            "cpu",
        ]))
    };
    let table = arms(&held_out);
    let row = table.lines().last().unwrap();
    assert!(row.contains("| 12 |"), "{table}");
    let shares: Vec<f64> = row
        .split('|')
        .filter_map(|c| c.trim().split('%').next()?.parse().ok())
        .collect();
    assert!(
        shares.len() >= 3 && shares.iter().all(|s| (0.0..=100.0).contains(s)),
        "{table}"
    );
    assert_eq!(table, arms(&scrambled_file));

    // `critic-probe`: one row per model, its share of right answers in [0, 100]%, and a by-step
    // table with a cell per answer step; fewer than 2 samples compare nothing and are refused.
    let probe = |samples: &str| {
        crsm_train(&[
            "critic-probe",
            "--model",
            dir.join("crsm").to_str().unwrap(),
            "--tasks",
            held_out.to_str().unwrap(),
            "--samples",
            samples,
            "--steps",
            "5",
            "--device",
            "cpu",
        ])
    };
    let table = ok(&probe("3"));
    let row = table
        .lines()
        .find(|l| l.contains("| 12 x 3 |"))
        .expect("a model's row");
    let right: f64 = row
        .split('|')
        .nth(3)
        .unwrap()
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!((0.0..=100.0).contains(&right), "{table}");
    let section = |title: &str| -> Vec<&str> {
        let from = table
            .find(title)
            .unwrap_or_else(|| panic!("{title}: {table}"));
        table[from..]
            .lines()
            .filter(|l| l.starts_with("| "))
            .collect()
    };
    let by_step = section("By answer step")[1];
    assert_eq!(by_step.matches('|').count(), 5 + 2, "{table}");
    // Best of 3: one sample, by the critic, by certainty, any right; no picker beats any right.
    let best = section("Best of 3")[1];
    let shares: Vec<f64> = (best.split('|').skip(2))
        .filter_map(|c| c.trim().split('%').next()?.parse().ok())
        .collect();
    assert_eq!(shares.len(), 4, "{table}");
    assert!(shares.iter().all(|s| (0.0..=100.0).contains(s)), "{table}");
    assert!(shares[1] <= shares[3] && shares[2] <= shares[3], "{table}");
    let refused = probe("1");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("at least 2"));
}

#[test]
fn eval_names_a_bad_problem_line_and_a_missing_model() {
    let dir = scratch("bad");
    let file = dir.join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"family\": \"pathstar\", \"prompt\": \"1,2/1,2=\", \"answer\": \"1,2\"}\nnot json\n",
    )
    .unwrap();
    let out = crsm_train(&[
        "eval",
        "--model",
        dir.join("none").to_str().unwrap(),
        "--tasks",
        file.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2", file.display())),
        "{stderr}"
    );
}
