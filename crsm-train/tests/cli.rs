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
