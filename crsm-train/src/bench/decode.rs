//! `crsm-train bench decode`: prefill tokens/s (the parallel forward over a prompt) and decode
//! tokens/s (the recurrent step, one token at a time, logits read back each step as generation
//! must) of a random model, by default mamba-130m's shape (768 x 24, vocab 50280).
//!
//! Single-stream decode reads every weight once per token, so its limit is memory bandwidth: the
//! line says what fraction of that roofline (weight bytes per token over the device's copy
//! bandwidth, measured in the same run) the step reaches. `--states 1,8,64` also times the step
//! over B independent states at once (what the planner's exact-dynamics mode does per wave: the
//! weights are read once for all B), reported as states stepped per second.

use anyhow::Result;
use clap::Args;
use crsm::model::{Backbone, CrsmConfig};
use crsm::{Device, Tensor};

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
    /// Weight storage for the timed model: f32, or bf16 (half the bytes per token, f32 arithmetic;
    /// cpu only).
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
    weights: String,
    /// Also time one step over B independent states for each B in this list (e.g. 1,8,64).
    #[arg(long, value_delimiter = ',')]
    states: Vec<usize>,
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
        None => {
            let config = CrsmConfig::new(args.vocab, args.d_model, args.layers);
            // The weights alone (batch 0: no activations) must fit before they are made.
            crate::size_check::refuse_too_large(&config, 0, 0, &device)?;
            Backbone::init(config, 0, &device)?
        }
    };
    let model = if args.weights == "bf16" {
        model.with_bf16_weights()?
    } else {
        model
    };
    let _off = crsm::no_grad();
    refuse_long_prompt(&model.config, args.prompt, &device)?;
    let vocab = model.config.vocab_size as u64;
    // In u64: a prompt past 2^32 tokens must not wrap (it is refused above when it cannot fit).
    let prompt: Vec<u32> = (0..args.prompt as u64)
        .map(|t| ((t * 7919 + 13) % vocab) as u32)
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
    let batched = args
        .states
        .iter()
        .map(|&b| Ok((b, step_many(&model, b, args.steps)?)))
        .collect::<Result<Vec<_>>>()?;
    let prefill_tps = args.prompt as f64 / prefill_seconds;
    let decode_tps = 1.0 / step_seconds;
    let c = &model.config;
    let weight_bytes = weight_bytes_per_token(&model);
    let copy_gbps = copy_bandwidth(&device)?;
    let roofline_tps = copy_gbps * 1e9 / weight_bytes as f64;
    let fraction = decode_tps / roofline_tps;
    if args.json {
        let line = serde_json::json!({
            "prefill_tokens_per_s": prefill_tps, "decode_tokens_per_s": decode_tps, "device": device.name(),
            "prompt": args.prompt, "d_model": c.hidden_size, "layers": c.num_hidden_layers, "vocab": c.vocab_size,
            "weights": args.weights, "weight_bytes_per_token": weight_bytes, "copy_gb_per_s": copy_gbps, "roofline_fraction": fraction,
            "states_per_s": batched.iter().map(|&(b, s)| serde_json::json!({"batch": b, "states_per_s": b as f64 / s})).collect::<Vec<_>>(),
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
        println!(
            "roofline: {:.0} MB of {} weights per token over {copy_gbps:.1} GB/s of copy bandwidth = {roofline_tps:.1} tokens/s; decode reaches {fraction:.2} of it",
            weight_bytes as f64 / 1e6,
            args.weights
        );
        for (b, seconds) in &batched {
            println!(
                "batched step: {b} states in {:.2} ms = {:.0} states/s",
                seconds * 1e3,
                *b as f64 / seconds
            );
        }
    }
    Ok(())
}

/// Median seconds of one step over `batch` independent states (logits [B, V] read back).
fn step_many(model: &Backbone, batch: usize, steps: usize) -> Result<f64> {
    let device = model.device();
    let vocab = model.config.vocab_size as u32;
    let mut state = model.new_state(batch)?;
    let mut ids: Vec<u32> = (0..batch as u32).map(|i| (i * 7919 + 13) % vocab).collect();
    time_per_call(3, steps, 2.0, || {
        let logits = model.step(
            &Tensor::from_u32(ids.clone(), &[batch], &device)?,
            &mut state,
        )?;
        let logits = logits.to_vec_f32()?;
        for (row, id) in logits.chunks(vocab as usize).zip(&mut ids) {
            *id = crsm::generate::argmax(row)?;
        }
        Ok(())
    })
}

/// The bytes a single-stream step reads from weights: every parameter once, in its storage
/// dtype, except the embedding table, of which a step reads one row (unless it is also the head).
fn weight_bytes_per_token(model: &Backbone) -> u64 {
    let bytes = |t: &Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as u64;
    let all: u64 = model.parameters().into_iter().map(bytes).sum();
    match model.lm_head {
        None => all,
        Some(_) => all - bytes(&model.embeddings) + (model.config.hidden_size * 4) as u64,
    }
}

/// The device's copy bandwidth in GB/s (bytes read plus bytes written per second) between two
/// 64 MiB buffers allocated up front, the median copy, as `cargo bench`'s copy row measures it.
fn copy_bandwidth(device: &Device) -> Result<f64> {
    let n = 16 << 20;
    let seconds = match device {
        // The meta device moves no bytes; `--device` never opens it.
        Device::Meta(_) => anyhow::bail!("the meta device has no bandwidth to measure"),
        Device::Cpu => {
            let src = vec![1f32; n];
            let mut dst = vec![0f32; n];
            time_per_call(2, 8, 1.0, || {
                dst.copy_from_slice(std::hint::black_box(&src));
                std::hint::black_box(&mut dst);
                Ok(())
            })?
        }
        // wgpu (and cuda, with the `cuda` feature): copies into pooled buffers (wgpu's pool, the
        // driver's stream-ordered allocator): after the first, no allocation reaches the driver.
        _ => {
            let x = Tensor::zeros(&[n], device)?;
            time_per_call(2, 8, 1.0, || {
                let y = x.deep_clone()?;
                device.sync()?;
                drop(y);
                Ok(())
            })?
        }
    };
    Ok(2.0 * 4.0 * n as f64 / seconds / 1e9)
}

/// Refuses a prompt whose ids and one block's activations over it (about 4 x d_inner floats a
/// token, a lower bound of the prefill) overflow or exceed the device's memory, naming --prompt.
fn refuse_long_prompt(config: &CrsmConfig, prompt: usize, device: &Device) -> Result<()> {
    let per_token = 4 * (1 + 4 * config.d_inner() as u64);
    let need = (prompt as u64).checked_mul(per_token);
    let available = crate::size_check::device_memory(device);
    match (need, available) {
        (None, _) => anyhow::bail!(
            "--prompt {prompt}: {prompt} tokens x {per_token} bytes overflows a 64-bit byte count"
        ),
        (Some(need), Some(available)) if need > available => anyhow::bail!(
            "--prompt {prompt}: the prefill needs at least {need} bytes and {} has {available}",
            device.name()
        ),
        _ => Ok(()),
    }
}
