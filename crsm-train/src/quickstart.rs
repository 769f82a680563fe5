//! `crsm-train quickstart`: the default job, one command on a fresh machine. Trains a byte-level
//! BPE tokenizer on the shipped Austen novels, prepares shards (Persuasion, the last book, held
//! out), runs `full` on the nano config (pretraining within its time budget, distill, assemble,
//! critic; a stage whose outputs already match its inputs is skipped, one that must run starts
//! over, keeping the tokenizer and shards), and ends by generating a paragraph from the assembled
//! CRSM with the planner deliberating beside it (async) and the count of its plans. The last line is `quickstart: held_out_bpb=<x> dynamics_r2_1=<a> dynamics_r2_8=<b>
//! linear_r2_8=<c> critic_pearson=<d> minutes=<m>` for scripts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use crsm::data::{BadLinePolicy, ValSource, prepare, train_bpe};
use crsm::generate::deliberate::{DeliberateSession, Mode, Steering};
use crsm::generate::{GenerateOptions, SamplingConfig, generate};
use crsm::latent::CrsmCheckpoint;
use crsm::planner::SearchConfig;
use crsm::planner::latent_model::LatentModel;
use crsm::planner::leaf_evaluator::LeafValue;
use crsm::planner::planning::{DynamicsMode, PlannerConfig};
use crsm::train::RunConfig;

use crate::device_arg::DeviceOverride;

#[derive(Args)]
pub struct QuickstartArgs {
    /// The run config; its model.vocab_size is the tokenizer's size.
    #[arg(long, default_value = "configs/nano.json")]
    config: PathBuf,
    /// Training text (everything but the held-out book).
    #[arg(long, default_value = "data/austen/train.txt")]
    train_text: PathBuf,
    /// Held-out text for validation.
    #[arg(long, default_value = "data/austen/persuasion.txt")]
    val_text: PathBuf,
    #[command(flatten)]
    device: DeviceOverride,
    /// Overrides training.time_budget_minutes (training time only).
    #[arg(long)]
    minutes: Option<f64>,
    /// Overrides training.max_steps.
    #[arg(long)]
    max_steps: Option<usize>,
    /// The prompt of the closing paragraph.
    #[arg(long, default_value = "It is a truth universally acknowledged")]
    prompt: String,
}

pub fn run(args: QuickstartArgs) -> Result<()> {
    let started = Instant::now();
    let mut config = RunConfig::from_json_file(&args.config)?;
    if let Some(m) = args.minutes {
        config.training.time_budget_minutes = Some(m);
    }
    if let Some(s) = args.max_steps {
        config.training.max_steps = s;
        config.training.warmup_steps = config.training.warmup_steps.min(s);
    }
    config
        .training
        .validate(&args.config.display().to_string())?;
    let t = config.training.clone();
    let tokenizer_path = PathBuf::from(&t.tokenizer);
    let data_dir = PathBuf::from(&t.data);

    // 1. Tokenizer and shards: made once, reused by later runs.
    if let Some(dir) = tokenizer_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if !tokenizer_path.exists() {
        let tok = train_bpe(
            std::slice::from_ref(&args.train_text),
            config.model.vocab_size,
        )
        .with_context(|| format!("training a tokenizer on {}", args.train_text.display()))?;
        tok.save(&tokenizer_path)?;
        eprintln!(
            "tokenizer: {} tokens -> {}",
            tok.vocab_size(),
            tokenizer_path.display()
        );
    }
    if !shards_match(&data_dir, &tokenizer_path) {
        let s = prepare(
            &args.train_text,
            &tokenizer_path,
            &data_dir,
            &ValSource::File(args.val_text.clone()),
            BadLinePolicy::Fail,
        )
        .with_context(|| format!("preparing {}", args.train_text.display()))?;
        eprintln!(
            "shards: {} train tokens ({} bytes), {} held-out tokens ({} bytes) -> {}",
            s.train.count,
            s.train.bytes,
            s.val.count,
            s.val.bytes,
            data_dir.display()
        );
    }

    // 2. The four stages (`full`): each skipped when its outputs match its inputs.
    let device = args.device.open(&t.device)?;
    let file = args.config.display().to_string();
    let summary = crate::full::run_stages(&config, &file, &device, false)?;

    // 3. A paragraph from the assembled CRSM, the planner deliberating beside it (async).
    let assembled = config
        .assemble
        .as_ref()
        .map(|a| PathBuf::from(&a.out_dir))
        .context("the run file has no assemble section")?;
    let checkpoint = CrsmCheckpoint::load(&assembled, &device)
        .with_context(|| format!("loading {}", assembled.display()))?;
    let model = LatentModel::from_checkpoint(checkpoint)?;
    print_paragraph(model, &tokenizer_path, &args.prompt)?;
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!("quickstart: {} minutes={minutes:.2}", summary.figures());
    Ok(())
}

/// Whether `dir` holds shards made with this tokenizer (otherwise they are made again).
fn shards_match(dir: &Path, tokenizer: &Path) -> bool {
    let Ok(hash) = crsm::data::sha256_file(tokenizer) else {
        return false;
    };
    ["train", "val"]
        .iter()
        .all(|split| crsm::data::TokenShard::open(dir, split, Some(&hash)).is_ok())
}

fn print_paragraph(model: Arc<LatentModel>, tokenizer: &Path, prompt: &str) -> Result<()> {
    let tok = crsm::data::Tokenizer::from_file(tokenizer)?;
    let _off = crsm::no_grad();
    let prompt_ids = tok.encode(prompt)?;
    let opts = GenerateOptions {
        max_new_tokens: 120,
        sampling: SamplingConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            repetition_penalty: 1.1,
            seed: 1,
        },
        stop_on_eos: tok.eos_id(),
        stop_strings: Vec::new(),
    };
    let planner = PlannerConfig {
        dynamics: DynamicsMode::Learned,
        search: SearchConfig::for_budget(16, 8),
        lag: 1,
        leaf_value: LeafValue::Critic,
        trace_nodes: 0,
    };
    let mut session =
        DeliberateSession::new(model, Mode::Async, Steering::default(), planner, 1, 1)?;
    let mut stream = tok.stream_decoder_after(&prompt_ids);
    let mut stdout = std::io::stdout();
    print!("\n{prompt}");
    generate(&mut session, &prompt_ids, &opts, Some(&tok), |id| {
        print!("{}", stream.push(id)?);
        let _ = stdout.flush();
        Ok(())
    })?;
    println!("{}\n", stream.finish()?);
    let stats = session.finish()?;
    let p = stats.plans;
    println!(
        "deliberation (async, lag 1, 16 simulations): {} tokens, plans posted {} / applied {} / late {} / dropped {} / diverged {} / rejected {}",
        stats.steps, p.received, p.applied, p.decayed, p.dropped, p.diverged, p.rejected
    );
    Ok(())
}
