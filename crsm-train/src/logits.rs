//! `crsm-train logits`: the parallel forward's logits for given ids, written as one safetensors
//! tensor `logits` [len(ids), vocab] (for comparing with other implementations from scripts).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use crsm::Tensor;
use crsm::io::{HostTensor, save_safetensors};
use crsm::model::Backbone;

use crate::device_arg::DeviceArg;

#[derive(Args)]
pub struct LogitsArgs {
    /// HF-style model folder: config.json + model.safetensors (or shards).
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated token ids, e.g. 3,17,5.
    #[arg(long, value_delimiter = ',', required = true)]
    ids: Vec<u32>,
    #[command(flatten)]
    device: DeviceArg,
    /// Output file (.safetensors).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: LogitsArgs) -> Result<()> {
    let device = args.device.open()?;
    let backbone = Backbone::load(&args.model, &device)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let _off = crsm::no_grad();
    let ids = Tensor::from_u32(args.ids.clone(), &[1, args.ids.len()], &device)?;
    let logits = backbone.forward(&ids)?;
    let vocab = logits.dim(2);
    let host = HostTensor::new(vec![args.ids.len(), vocab], logits.to_vec_f32()?)?;
    save_safetensors(&args.out, &BTreeMap::from([("logits".to_string(), host)]))
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "logits [{}, {vocab}] on {} -> {}",
        args.ids.len(),
        device.name(),
        args.out.display()
    );
    Ok(())
}
