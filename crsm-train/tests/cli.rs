//! The commands scripts rely on, run as a user runs them, against the HF transformers fixture:
//! `generate --json` reproduces transformers' greedy continuation and `logits` its logits.

use std::path::PathBuf;
use std::process::Command;

use crsm::io::load_safetensors_file;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mamba-tiny")
}

fn crsm_train(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args(args)
        .output()
        .expect("crsm-train runs");
    assert!(
        out.status.success(),
        "crsm-train {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn reference(name: &str) -> Vec<f32> {
    load_safetensors_file(&fixture().join("reference.safetensors"))
        .unwrap()
        .remove(name)
        .unwrap()
        .data
}

fn ids_arg(ids: &[f32]) -> String {
    ids.iter()
        .map(|v| (*v as u32).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn generate_json_reproduces_the_transformers_greedy_continuation() {
    let prompt = ids_arg(&reference("prompt_ids"));
    let dir = fixture();
    let line = crsm_train(&[
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--ids",
        &prompt,
        "--max-new-tokens",
        "16",
        "--json",
        "--device",
        "cpu",
    ]);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    let ids: Vec<u32> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let want: Vec<u32> = reference("greedy_ids").iter().map(|v| *v as u32).collect();
    assert_eq!(ids, want);
    assert!(
        v["text"].is_null(),
        "no tokenizer.json and ids given: text is null"
    );
}

#[test]
fn logits_command_writes_the_transformers_logits() {
    let prompt = ids_arg(&reference("prompt_ids"));
    let out = std::env::temp_dir().join(format!(
        "crsm-cli-logits-{}.safetensors",
        std::process::id()
    ));
    let dir = fixture();
    crsm_train(&[
        "logits",
        "--model",
        dir.to_str().unwrap(),
        "--ids",
        &prompt,
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    let got = load_safetensors_file(&out)
        .unwrap()
        .remove("logits")
        .unwrap();
    std::fs::remove_file(&out).ok();
    let want = reference("logits");
    assert_eq!(got.shape, vec![11, 61]);
    let max = got
        .data
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max < 1e-4, "max |diff| {max}");
}

#[test]
fn generate_streams_text_from_a_saved_random_model_with_the_gpt_neox_tokenizer() {
    use crsm::model::{Backbone, CrsmConfig};
    let dir = std::env::temp_dir().join(format!("crsm-cli-neox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // mamba-*-hf pads the GPT-NeoX vocabulary (50277 ids) to 50280.
    let mut config = CrsmConfig::new(50280, 16, 2);
    config.state_size = 4;
    Backbone::init(config, 3, &crsm::Device::Cpu)
        .unwrap()
        .save(&dir)
        .unwrap();
    let tokenizer =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/gpt-neox-20b_tokenizer.json");
    std::fs::copy(tokenizer, dir.join("tokenizer.json")).unwrap();
    let d = dir.to_str().unwrap();
    let streamed = crsm_train(&[
        "generate",
        "--model",
        d,
        "--prompt",
        "It is a truth",
        "--max-new-tokens",
        "8",
        "--temperature",
        "1.0",
        "--seed",
        "5",
        "--device",
        "cpu",
    ]);
    let line = crsm_train(&[
        "generate",
        "--model",
        d,
        "--prompt",
        "It is a truth",
        "--max-new-tokens",
        "8",
        "--temperature",
        "1.0",
        "--seed",
        "5",
        "--device",
        "cpu",
        "--json",
    ]);
    std::fs::remove_dir_all(&dir).ok();
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    let text = v["text"]
        .as_str()
        .expect("text is a string with a tokenizer");
    assert_eq!(v["ids"].as_array().unwrap().len(), 8);
    // The same seed streams exactly the text the JSON reports.
    assert_eq!(streamed.trim_end_matches('\n'), text);
}

#[test]
fn tokenizer_and_prepare_turn_a_tiny_corpus_into_train_and_val_shards() {
    use crsm::data::{TokenShard, Tokenizer, sha256_file};
    let dir = std::env::temp_dir().join(format!("crsm-cli-prepare-{}", std::process::id()));
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(
        corpus.join("a.txt"),
        "The quick brown fox jumps over the lazy dog. ".repeat(20),
    )
    .unwrap();
    std::fs::write(
        corpus.join("b.jsonl"),
        "{\"context\": [\"Who jumps?\"], \"response\": \"The fox.\"}\nnot json\n",
    )
    .unwrap();
    let tok_path = dir.join("tokenizer.json");
    let out = dir.join("prepared");
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();
    let line = crsm_train(&[
        "tokenizer",
        "--corpus",
        &p(&corpus.join("a.txt")),
        "--vocab-size",
        "280",
        "--out",
        &p(&tok_path),
    ]);
    assert!(line.starts_with("tokenizer: "), "{line}");

    // The bad line fails by default, naming file:line ...
    let failed = Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args([
            "prepare",
            "--input",
            &p(&corpus),
            "--tokenizer",
            &p(&tok_path),
        ])
        .args(["--out", &p(&out)])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains("b.jsonl:2") && stderr.contains("not valid JSON"),
        "{stderr}"
    );

    // ... and is skipped with --bad-lines skip.
    let line = crsm_train(&[
        "prepare",
        "--input",
        &p(&corpus),
        "--tokenizer",
        &p(&tok_path),
        "--out",
        &p(&out),
        "--val-fraction",
        "0.1",
        "--bad-lines",
        "skip",
    ]);
    let tok = Tokenizer::from_file(&tok_path).unwrap();
    let hash = sha256_file(&tok_path).unwrap();
    let train = TokenShard::open(&out, "train", Some(&hash)).unwrap();
    let val = TokenShard::open(&out, "val", Some(&hash)).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    train.read(0, train.len(), &mut a).unwrap();
    val.read(0, val.len(), &mut b).unwrap();
    a.extend(b);
    let (mut loss, mut val_loss) = (Vec::new(), Vec::new());
    train.carries_loss(0, train.len(), &mut loss).unwrap();
    val.carries_loss(0, val.len(), &mut val_loss).unwrap();
    loss.extend(val_loss);
    let text = tok.decode(&a).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        line.starts_with(&format!(
            "prepared 2 documents: train {} tokens, val {} tokens, dtype u16, 1 bad lines skipped",
            train.len(),
            val.len()
        )),
        "{line}"
    );
    assert!(
        text.ends_with("<|endoftext|>Who jumps?\nThe fox.<|endoftext|>"),
        "{text}"
    );
    let prompt = tok.encode("Who jumps?\n").unwrap().len();
    assert_eq!(
        loss.iter().filter(|&&l| !l).count(),
        prompt,
        "only the chat prompt carries no loss"
    );
}

#[test]
fn pretrain_resume_and_sft_run_end_to_end_on_a_tiny_chat_corpus() {
    let dir = std::env::temp_dir().join(format!("crsm-cli-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();
    let chat: String = (0..200)
        .map(|i| {
            format!(
                "{{\"context\": [\"What is {i} plus one?\"], \"response\": \"It is {}.\"}}\n",
                i + 1
            )
        })
        .collect();
    let corpus = dir.join("chat.jsonl");
    std::fs::write(&corpus, chat).unwrap();
    let tok = dir.join("tokenizer.json");
    crsm_train(&[
        "tokenizer",
        "--corpus",
        &p(&corpus),
        "--vocab-size",
        "300",
        "--out",
        &p(&tok),
    ]);
    let data = dir.join("data");
    crsm_train(&[
        "prepare",
        "--input",
        &p(&corpus),
        "--tokenizer",
        &p(&tok),
        "--out",
        &p(&data),
        "--val-fraction",
        "0.2",
    ]);
    let vocab = crsm::data::Tokenizer::from_file(&tok).unwrap().vocab_size();
    let run = |name: &str| {
        let config = serde_json::json!({
            "model": {"vocab_size": vocab, "hidden_size": 16, "num_hidden_layers": 1, "state_size": 4},
            "training": {"data": data, "tokenizer": tok, "out_dir": dir.join(name), "batch_size": 2, "seq_len": 16,
                         "max_steps": 4, "lr": 0.01, "eval_every": 2, "eval_tokens": 128, "checkpoint_every": 2, "device": "cpu"}
        });
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, config.to_string()).unwrap();
        path
    };
    let pre = run("pre");
    let line = crsm_train(&["pretrain", "--config", &p(&pre), "--stop-at", "2"]);
    assert!(line.starts_with("step 2: held-out loss"), "{line}");
    let line = crsm_train(&["pretrain", "--config", &p(&pre), "--resume"]);
    assert!(line.starts_with("step 4: held-out loss"), "{line}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pre/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["steps"].as_array().unwrap().len(), 4);
    assert!(dir.join("pre/loss.png").is_file());

    let sft = run("sft");
    let line = crsm_train(&[
        "sft",
        "--config",
        &p(&sft),
        "--init",
        &p(&dir.join("pre/checkpoint")),
    ]);
    assert!(line.starts_with("step 4: held-out loss"), "{line}");
    // The SFT model is a plain model folder other commands read.
    let json = crsm_train(&[
        "generate",
        "--model",
        &p(&dir.join("sft/checkpoint")),
        "--prompt",
        "What is 3 plus one?",
        "--max-new-tokens",
        "4",
        "--json",
    ]);
    assert!(json.contains("\"ids\""), "{json}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn memtest_exit_status_says_whether_the_step_fits() {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/nano.json");
    let memtest = |budget: &str| {
        Command::new(env!("CARGO_BIN_EXE_crsm-train"))
            .args(["memtest", "--config", config.to_str().unwrap()])
            .args(["--batch", "1", "--seq", "8", "--json", "--budget", budget])
            .output()
            .expect("crsm-train runs")
    };
    let fits = memtest("1GiB");
    assert_eq!(fits.status.code(), Some(0), "{fits:?}");
    let report: serde_json::Value = serde_json::from_slice(&fits.stdout).unwrap();
    assert_eq!(report["fits"], true);
    // 4 x the parameters (weights, two moments, gradients) at least: nano has ~2.7M of them.
    assert!(report["peak_bytes"].as_u64().unwrap() > 4 * 4 * 2_000_000);
    let too_small = memtest("1MB");
    assert_eq!(too_small.status.code(), Some(3), "{too_small:?}");
}

/// `--device` is one shared argument: each subcommand's help shows its own default (auto; cpu for
/// memtest; none where it overrides the run config), and a bad value is refused before anything
/// runs, naming the accepted ones.
#[test]
fn device_flag_shows_each_subcommands_default_and_refuses_bad_values() {
    let device_help = |cmd: &[&str]| {
        let help = crsm_train(&[cmd, &["--help"]].concat());
        let at = help
            .find("--device <DEVICE>")
            .unwrap_or_else(|| panic!("{cmd:?}: no --device in {help}"));
        // The flag's line and its wrapped continuation, up to the next flag.
        let mut lines = help[at..].lines().map(str::trim);
        let mut entry = lines.next().unwrap().to_string();
        for line in lines.take_while(|l| !l.is_empty() && !l.starts_with('-')) {
            entry = format!("{entry} {line}");
        }
        entry.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let auto: [&[&str]; 5] = [
        &["info"],
        &["logits"],
        &["generate"],
        &["bench", "train"],
        &["bench", "decode"],
    ];
    for cmd in auto {
        let help = device_help(cmd);
        assert!(
            help.contains("gpu or lavapipe") && help.ends_with("[default: auto]"),
            "{help}"
        );
    }
    let help = device_help(&["memtest"]);
    assert!(help.ends_with("[default: cpu]"), "{help}");
    for cmd in ["pretrain", "sft", "quickstart"] {
        let help = device_help(&[cmd]);
        assert!(help.ends_with("overrides training.device"), "{help}");
    }

    let bad = Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args(["info", "--device", "tpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && bad.stdout.is_empty(), "{bad:?}");
    assert!(
        stderr.contains("unknown device 'tpu'") && stderr.contains("lavapipe"),
        "{stderr}"
    );
}
