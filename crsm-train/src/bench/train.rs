//! `crsm-train bench train`: training tokens/s of a model shape on random tokens, the number the
//! PyTorch comparison scripts under `benches/` print for the same shape.

use anyhow::{Result, bail};
use clap::Args;
use crsm::model::{Backbone, CrsmConfig};
use crsm::train::random_step::{random_tokens, training_step};
use crsm::train::{AdamW, AdamWConfig, Precision, RunConfig};

use super::time_per_call;
use crate::device_arg::DeviceArg;

#[derive(Args)]
pub struct TrainBenchArgs {
    /// A run config (configs/*.json: its model, batch and seq) or a model config.json (HF keys);
    /// without it, --d-model/--layers/--vocab build one.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 256)]
    d_model: usize,
    #[arg(long, default_value_t = 4)]
    layers: usize,
    #[arg(long, default_value_t = 256)]
    vocab: usize,
    /// Sequences per step (default: the run config's, else 8).
    #[arg(long)]
    batch: Option<usize>,
    /// Tokens per sequence (default: the run config's, else 256).
    #[arg(long)]
    seq: Option<usize>,
    /// Timed steps at least (after the warm-up steps); the median step is reported.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[command(flatten)]
    device: DeviceArg,
    /// f32 or f16 (f16 matmul operands; default: the run config's, else f32).
    #[arg(long)]
    precision: Option<String>,
    /// Print one JSON line instead of a sentence.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TrainBenchArgs) -> Result<()> {
    let device = args.device.open()?;
    // A run config has a `training` section; anything else is read as a model config.json, so
    // a typo in a run config is reported as such rather than as a bad model config.
    let (config, run_shape, run_precision) = match &args.config {
        Some(path) if is_run_config(path)? => {
            let run = RunConfig::from_json_file(path)?;
            (
                run.model,
                Some((run.training.batch_size, run.training.seq_len)),
                Some(run.training.precision),
            )
        }
        Some(path) => (CrsmConfig::from_json_file(path)?, None, None),
        None => (
            CrsmConfig::new(args.vocab, args.d_model, args.layers),
            None,
            None,
        ),
    };
    let precision = match args.precision.as_deref() {
        None => run_precision.unwrap_or_default(),
        Some("f32") => Precision::F32,
        Some("f16") => Precision::F16,
        Some(other) => bail!("--precision {other}: expected f32 or f16"),
    };
    if precision == Precision::F16 && !device.supports_f16() {
        bail!(
            "precision f16 needs a device with shader-f16, and {} has none",
            device.name()
        );
    }
    let (b, l) = (
        args.batch.or(run_shape.map(|s| s.0)).unwrap_or(8),
        args.seq.or(run_shape.map(|s| s.1)).unwrap_or(256),
    );
    crate::size_check::refuse_too_large(&config, b, l, &device)?;
    let mut model = Backbone::init(config.clone(), 0, &device)?;
    let params: usize = model.parameters().iter().map(|p| p.elem_count()).sum();
    let (inputs, targets) = random_tokens(config.vocab_size, b, l, 7, &device)?;
    let mut optimizer = AdamW::new(AdamWConfig::default());
    let seconds = time_per_call(args.warmup, args.steps, 3.0, || {
        let _precision = crsm::ops::set_f16_matmuls(precision == Precision::F16);
        training_step(&mut model, &mut optimizer, &inputs, &targets, 1e-4, |_| {})?;
        Ok(())
    })?;
    let tokens_per_s = (b * l) as f64 / seconds;
    if args.json {
        let line = serde_json::json!({
            "tokens_per_s": tokens_per_s, "device": device.name(), "batch": b, "seq": l, "params": params,
            "precision": precision.name(),
        });
        println!("{line}");
    } else {
        println!(
            "train: {tokens_per_s:.0} tokens/s ({:.1} ms/step) on {}, batch {b} x {l}, {params} parameters, {}",
            seconds * 1e3,
            device.name(),
            precision.name()
        );
    }
    Ok(())
}

fn is_run_config(path: &std::path::Path) -> Result<bool> {
    let value: serde_json::Value = crsm::io::read_json(path)?;
    Ok(value.get("training").is_some())
}
