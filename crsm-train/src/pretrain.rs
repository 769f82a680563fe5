//! `crsm-train pretrain --config C`: causal-LM pretraining on prepared shards, and
//! `crsm-train sft --config C --init CKPT`: the same loop from pretrained weights, where the
//! shards' loss spans (responses) decide which tokens are scored.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use crsm::train::{RunConfig, Trainer, remove_run};

use crate::device_arg::DeviceOverride;
use crate::progress::TrainProgress;
use crate::run_start_arg::RunStart;

#[derive(Args)]
pub struct PretrainArgs {
    /// Run config (JSON with `model` and `training` sections), e.g. configs/nano.json.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    device: DeviceOverride,
    /// --resume | --overwrite, for the run in training.out_dir.
    #[command(flatten)]
    start: RunStart,
    /// Stop after this step (the schedule still spans training.max_steps).
    #[arg(long)]
    stop_at: Option<usize>,
}

#[derive(Args)]
pub struct SftArgs {
    #[command(flatten)]
    run: PretrainArgs,
    /// Model folder with the pretrained weights to start from (ignored with --resume).
    #[arg(long)]
    init: PathBuf,
}

pub fn run_pretrain(args: PretrainArgs) -> Result<()> {
    train(args, None)
}

pub fn run_sft(args: SftArgs) -> Result<()> {
    let config = RunConfig::from_json_file(&args.run.config)?;
    refuse_shards_without_responses(&config)?;
    train(args.run, Some(args.init))
}

/// SFT scores only response tokens; shards prepared from plain text have no response spans, and
/// training on them would silently score every token (pretraining under another name).
fn refuse_shards_without_responses(config: &RunConfig) -> Result<()> {
    let dir = std::path::Path::new(&config.training.data);
    let shard = crsm::data::TokenShard::open(dir, "train", None)?;
    if shard.header().loss_spans.is_none() {
        anyhow::bail!(
            "sft: {} has no response spans (loss_spans): it was prepared from plain text, and              every token would carry loss; prepare instruction data (prompt/response or Alpaca              JSONL) for sft, or use pretrain",
            shard.file()
        );
    }
    Ok(())
}

fn train(args: PretrainArgs, init: Option<PathBuf>) -> Result<()> {
    let config = RunConfig::from_json_file(&args.config)?;
    let device = args.device.open(&config.training.device)?;
    let t = &config.training;
    crate::size_check::refuse_too_large(&config.model, t.batch_size, t.seq_len, &device)?;
    if args.start.overwrite {
        let out_dir = Path::new(&config.training.out_dir);
        remove_run(out_dir).with_context(|| format!("overwriting {}", out_dir.display()))?;
    }
    let mut trainer = if args.start.resume {
        let trainer = Trainer::resume(config, &device).context("resuming")?;
        if !trainer.resume_warnings().is_empty() {
            eprintln!(
                "warning: resuming with changed settings: {} (the run goes on, but not as it began)",
                trainer.resume_warnings().join(", ")
            );
        }
        trainer
    } else if let Some(init) = init {
        Trainer::from_weights(config, &init, &device)
            .with_context(|| format!("starting from {}", init.display()))?
    } else {
        Trainer::new(config, &device)?
    };
    let t = trainer.training.clone();
    let plot = trainer.out_dir().join("loss.png");
    let mut progress =
        TrainProgress::new(t.max_steps, trainer.state_step, t.eval_every.min(50), plot);
    progress.say(&format!(
        "training on {} from step {}, writing to {}",
        device.name(),
        trainer.state_step,
        t.out_dir
    ));
    let last = trainer.run(args.stop_at, &mut progress)?;
    progress.finish();
    if let Some(e) = last {
        println!(
            "step {}: held-out loss {:.4}, bits per byte {:.4}",
            e.step, e.loss, e.bpb
        );
    }
    Ok(())
}
