//! `crsm-train bench decode`: prefill tokens/s (the parallel forward over a prompt) and decode
//! tokens/s (the recurrent step, one token at a time, logits read back each step as generation
//! must) of a random model, by default mamba-130m's shape (768 x 24, vocab 50280).

use anyhow::Result;
use clap::Args;
use crsm::Tensor;
use crsm::model::{Backbone, CrsmConfig};

use super::time_per_call;
use crate::device_arg::DeviceArg;

#[derive(Args)]
pub struct DecodeBenchArgs {
    /// A model folder (config.json + model.safetensors); without it, a random model of
    /// --d-model/--layers/--vocab.
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 768)]
    d_model: usize,
    #[arg(long, default_value_t = 24)]
    layers: usize,
    #[arg(long, default_value_t = 50280)]
    vocab: usize,
    /// Prompt length for the prefill measurement.
    #[arg(long, default_value_t = 512)]
    prompt: usize,
    /// Timed decode steps at least.
    #[arg(long, default_value_t = 32)]
    steps: usize,
    #[command(flatten)]
    device: DeviceArg,
    /// Print one JSON line instead of a sentence.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DecodeBenchArgs) -> Result<()> {
    let device = args.device.open()?;
    let model = match &args.model {
        Some(dir) => Backbone::load(dir, &device)?,
        None => Backbone::init(
            CrsmConfig::new(args.vocab, args.d_model, args.layers),
            0,
            &device,
        )?,
    };
    let _off = crsm::no_grad();
    let vocab = model.config.vocab_size as u32;
    let prompt: Vec<u32> = (0..args.prompt as u32)
        .map(|t| (t * 7919 + 13) % vocab)
        .collect();
    let prompt = Tensor::from_u32(prompt, &[1, args.prompt], &device)?;
    let prefill_seconds = time_per_call(1, 2, 2.0, || {
        let mut state = model.new_state(1)?;
        model.prefill(&prompt, &mut state)?.to_vec_f32()?;
        Ok(())
    })?;
    let mut state = model.new_state(1)?;
    let mut next = 0u32;
    let step_seconds = time_per_call(3, args.steps, 2.0, || {
        let id = Tensor::from_u32(vec![next], &[1], &device)?;
        let logits = model.step(&id, &mut state)?.to_vec_f32()?;
        next = crsm::generate::argmax(&logits)?;
        Ok(())
    })?;
    let prefill_tps = args.prompt as f64 / prefill_seconds;
    let decode_tps = 1.0 / step_seconds;
    let c = &model.config;
    if args.json {
        let line = serde_json::json!({
            "prefill_tokens_per_s": prefill_tps, "decode_tokens_per_s": decode_tps, "device": device.name(),
            "prompt": args.prompt, "d_model": c.hidden_size, "layers": c.num_hidden_layers, "vocab": c.vocab_size,
        });
        println!("{line}");
    } else {
        println!(
            "decode: prefill {prefill_tps:.0} tokens/s ({} tokens), decode {decode_tps:.1} tokens/s ({:.1} ms/token) on {}, d {} x {} layers, vocab {}",
            args.prompt,
            step_seconds * 1e3,
            device.name(),
            c.hidden_size,
            c.num_hidden_layers,
            c.vocab_size
        );
    }
    Ok(())
}
