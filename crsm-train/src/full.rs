//! `crsm-train full --config C [--device D] [--resume]`: the four stages in order, 1 pretrain,
//! 2 distill, 3 assemble, 4 critic, then assemble again so the folder ends with the critic. A
//! reasoning run (a `tasks` section) starts with stage 0: its problem files, tokenizer and SFT
//! shards; stage 1 is then SFT and stage 4 learns task reward.
//!
//! Each stage writes a manifest (`<its out_dir>/stage.json`, `crsm::train::stage_manifest`):
//! the hashes of what it read (its config section, the stage-1 weights, the tokenizer, the
//! shards' or traces' headers) and of what it wrote. A stage whose manifest matches what it
//! would read now, with its outputs intact, is skipped with a line saying so; changing a
//! section re-runs that stage and, through the hashes, every stage after it. A stage that must
//! run starts afresh (its earlier run and, for distill, its traces deleted), or with `--resume`
//! continues from its newest checkpoint (and what traces are on disk).
//!
//! Stage 3 leaves the critic out unless the critic's own manifest is current, so a re-run never
//! assembles stale heads; after stage 4 the assembly is redone with them (cheap: it only copies
//! tensors). The last line is
//! `full: held_out_bpb=X dynamics_r2_1=A dynamics_r2_8=B linear_r2_8=C critic_pearson=D minutes=M`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use crsm::Device;
use crsm::data::sha256_file;
use crsm::train::assemble::{assemble, sources};
use crsm::train::checkpoint::latest_checkpoint;
use crsm::train::critic_stage::critic;
use crsm::train::distill::distill;
use crsm::train::lm_task::LmTask;
use crsm::train::stage_manifest::{
    Inputs, MANIFEST_FILE, PENDING_FILE, StageManifest, json_sha256,
};
use crsm::train::stage_source::stage1_source;
use crsm::train::task_data::make_task_data;
use crsm::train::{RunConfig, Trainer, remove_run};
use serde_json::json;

use crate::device_arg::DeviceOverride;
use crate::progress::TrainProgress;

#[derive(Args)]
pub struct FullArgs {
    /// Run config with `distill`, `assemble` and `critic` sections, e.g. configs/nano.json.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    device: DeviceOverride,
    /// Continue each stage that must run from its newest checkpoint instead of starting it over.
    #[arg(long)]
    resume: bool,
    /// Training seed K: training.seed = K, the stage seeds moved by K, every output under
    /// `<training.out_dir>-seedK`; the data, tokenizer and problems stay shared.
    #[arg(long)]
    seed: Option<u64>,
}

/// The figures of the closing line.
pub struct Summary {
    pub held_out_bpb: f64,
    pub dynamics_r2_1: f64,
    pub dynamics_r2_8: f64,
    pub linear_r2_8: f64,
    pub critic_pearson: f64,
}

impl Summary {
    /// `held_out_bpb=X dynamics_r2_1=A dynamics_r2_8=B linear_r2_8=C critic_pearson=D`.
    pub fn figures(&self) -> String {
        format!(
            "held_out_bpb={:.4} dynamics_r2_1={:.4} dynamics_r2_8={:.4} linear_r2_8={:.4} critic_pearson={:.4}",
            self.held_out_bpb,
            self.dynamics_r2_1,
            self.dynamics_r2_8,
            self.linear_r2_8,
            self.critic_pearson
        )
    }
}

pub fn run(args: FullArgs) -> Result<()> {
    let started = Instant::now();
    let file = args.config.display().to_string();
    let mut config = RunConfig::from_json_file(&args.config)?;
    if let Some(k) = args.seed {
        config = config.with_training_seed(k);
        eprintln!("full: training seed {k} -> {}", config.training.out_dir);
    }
    let device = args.device.open(&config.training.device)?;
    let summary = run_stages(&config, &file, &device, args.resume)?;
    println!(
        "full: {} minutes={:.2}",
        summary.figures(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// A number from a manifest's report (NaN when absent).
fn figure(report: &serde_json::Value, key: &str) -> f64 {
    report[key].as_f64().unwrap_or(f64::NAN)
}

fn skipped(n: usize, stage: &str, dir: &Path) {
    eprintln!(
        "stage {n}/4 {stage}: skipped, its outputs match its inputs ({})",
        dir.join(MANIFEST_FILE).display()
    );
}

/// Runs stages 1-4 of `config` (from `file`) on `device`, skipping the current ones.
pub fn run_stages(
    config: &RunConfig,
    file: &str,
    device: &Device,
    resume: bool,
) -> Result<Summary> {
    let missing = |s: &str| format!("{file}: `full` needs a `{s}` section (see configs/nano.json)");
    let d = config.distill.clone().with_context(|| missing("distill"))?;
    let a = config
        .assemble
        .clone()
        .with_context(|| missing("assemble"))?;
    let c = config.critic.clone().with_context(|| missing("critic"))?;
    let t = &config.training;
    if config.tasks.is_some() {
        task_data_stage(config, file)?;
    }
    let tokenizer = sha256_file(Path::new(&t.tokenizer))?;
    let data = Path::new(&t.data);
    let shards = json_sha256(&[
        sha256_file(&data.join("train.json"))?,
        sha256_file(&data.join("val.json"))?,
    ]);

    // ---- 1. pretrain -----------------------------------------------------------------------
    let out = Path::new(&t.out_dir);
    let inputs = Inputs::from([
        ("model".into(), json_sha256(&config.model)),
        ("training".into(), json_sha256(t)),
        ("tokenizer".into(), tokenizer.clone()),
        ("shards".into(), shards.clone()),
    ]);
    let pretrain = match StageManifest::current(out, "pretrain", &inputs) {
        Some(m) => {
            skipped(1, "pretrain", out);
            m
        }
        None => pretrain_stage(config, device, resume, inputs)?,
    };
    let held_out_bpb = figure(&pretrain.report, "held_out_bpb");

    // ---- 2. distill ------------------------------------------------------------------------
    let stage1 = stage1_source(config, file, device, "stage 1 wrote none")?;
    let out = PathBuf::from(&d.out_dir);
    let inputs = Inputs::from([
        ("distill".into(), json_sha256(&d)),
        ("backbone".into(), stage1.hash.clone()),
        ("tokenizer".into(), tokenizer.clone()),
        ("shards".into(), shards),
    ]);
    let fit = match StageManifest::current(&out, "distill", &inputs) {
        Some(m) => {
            skipped(2, "distill", &out);
            m
        }
        None => {
            eprintln!(
                "stage 2/4 distill: traces and dynamics -> {}",
                out.display()
            );
            let loop_config = d.loop_config(file)?;
            let resume = resumes(resume, &out, "distill", &inputs);
            if !resume {
                remove_run(Path::new(&loop_config.out_dir))?;
                let traces = out.join("traces");
                if traces.exists() {
                    std::fs::remove_dir_all(&traces)
                        .with_context(|| format!("removing {}", traces.display()))?;
                }
            }
            StageManifest::begin(&out, "distill", &inputs)?;
            let go_on = resume && latest_checkpoint(Path::new(&loop_config.out_dir)).is_some();
            let mut progress = crate::distill::Progress::new(&loop_config);
            let report = distill(config, file, device, go_on, &mut progress)?;
            progress.finish();
            crate::distill::print_report(&report, &d.out_dir);
            let r2 = |f: &crsm::latent::FitReport, k| f.at(k).map_or(f64::NAN, |x| x.r2_change);
            let mut outputs = vec![out.join("fit.json")];
            outputs.extend(
                latest_checkpoint(Path::new(&loop_config.out_dir))
                    .map(|dir| dir.join(crsm::train::dynamics_task::DYNAMICS_FILE)),
            );
            let broadcaster = out.join(crsm::train::assemble::BROADCASTER_FILE);
            outputs.extend(broadcaster.is_file().then_some(broadcaster));
            let report = json!({
                "dynamics_r2_1": r2(&report.dynamics, 1),
                "dynamics_r2_8": r2(&report.dynamics, 8),
                "linear_r2_8": r2(&report.linear, 8),
            });
            StageManifest::write(&out, "distill", inputs, &outputs, report)?
        }
    };

    // ---- 3. assemble (the critic only when its stage is current) --------------------------
    let critic_out = PathBuf::from(&c.out_dir);
    let critic_inputs = Inputs::from([
        ("critic".into(), json_sha256(&c)),
        ("tasks".into(), json_sha256(&config.tasks)),
        ("backbone".into(), stage1.hash.clone()),
        (
            "traces".into(),
            json_sha256(&[
                sha256_file(&Path::new(&d.traces_dir("train")).join("traces.json"))?,
                sha256_file(&Path::new(&d.traces_dir("val")).join("traces.json"))?,
            ]),
        ),
    ]);
    let critic_current = StageManifest::current(&critic_out, "critic", &critic_inputs);
    let assemble_stage = |include_critic: bool, n: usize| -> Result<()> {
        let out = PathBuf::from(&a.out_dir);
        let inputs = sources(config, file, include_critic)?.inputs(&a, &stage1)?;
        if StageManifest::current(&out, "assemble", &inputs).is_some() {
            if n == 3 {
                skipped(3, "assemble", &out);
            }
            return Ok(());
        }
        let report = assemble(config, file, device, include_critic)?;
        for note in &report.notes {
            eprintln!("{note}");
        }
        let stages: Vec<&str> = report.stages.iter().map(|s| s.name()).collect();
        eprintln!(
            "stage {n}/4 assemble: {} -> {}",
            stages.join(", "),
            out.display()
        );
        let outputs: Vec<PathBuf> = ["config.json", "model.safetensors", crsm::latent::CRSM_FILE]
            .iter()
            .map(|f| out.join(f))
            .filter(|p| p.is_file())
            .collect();
        StageManifest::write(
            &out,
            "assemble",
            inputs,
            &outputs,
            json!({ "stages": stages }),
        )?;
        Ok(())
    };
    assemble_stage(critic_current.is_some(), 3)?;

    // ---- 4. critic -------------------------------------------------------------------------
    let heads = match critic_current {
        Some(m) => {
            skipped(4, "critic", &critic_out);
            m
        }
        None => {
            eprintln!("stage 4/4 critic: value heads -> {}", critic_out.display());
            let loop_config = c.loop_config(&d.traces_dir("train"), file)?;
            let run_dir = Path::new(&loop_config.out_dir);
            let resume = resumes(resume, &critic_out, "critic", &critic_inputs);
            if !resume {
                remove_run(run_dir)?;
            }
            StageManifest::begin(&critic_out, "critic", &critic_inputs)?;
            let mut progress = TrainProgress::new(
                loop_config.max_steps,
                0,
                loop_config.eval_every.min(50),
                run_dir.join("loss.png"),
            );
            let go_on = resume && latest_checkpoint(run_dir).is_some();
            let report = critic(config, file, device, go_on, &mut progress)?;
            progress.finish();
            crate::critic::print_report(&report, &c)?;
            let mut outputs = vec![critic_out.join("critic.json")];
            outputs.extend(
                latest_checkpoint(run_dir)
                    .map(|dir| dir.join(crsm::train::critic_task::CRITIC_FILE)),
            );
            let figures = json!({ "pearson_mean": report.mean.pearson });
            StageManifest::write(&critic_out, "critic", critic_inputs, &outputs, figures)?
        }
    };
    // The assembly again, now with the critic (skipped when it already has it).
    assemble_stage(true, 4)?;

    Ok(Summary {
        held_out_bpb,
        dynamics_r2_1: figure(&fit.report, "dynamics_r2_1"),
        dynamics_r2_8: figure(&fit.report, "dynamics_r2_8"),
        linear_r2_8: figure(&fit.report, "linear_r2_8"),
        critic_pearson: figure(&heads.report, "pearson_mean"),
    })
}

/// Whether a stage that must run continues its checkpoints: asked to (`--resume`), and they were
/// made from the inputs it reads now (a checkpoint of an earlier backbone is started over).
fn resumes(resume: bool, out: &Path, stage: &str, inputs: &Inputs) -> bool {
    if resume && !StageManifest::resumable(out, stage, inputs) {
        let earlier = [MANIFEST_FILE, PENDING_FILE]
            .iter()
            .any(|f| out.join(f).is_file());
        if earlier {
            eprintln!(
                "{stage}: its checkpoints in {} were not made from today's inputs: starting it over",
                out.display()
            );
        }
        return false;
    }
    resume
}

/// Stage 0 of a reasoning run: the problem files, the tokenizer and the SFT shards
/// (`crsm::train::task_data`), skipped when its manifest (in the problems' folder) is current.
fn task_data_stage(config: &RunConfig, file: &str) -> Result<()> {
    let t = config.tasks.as_ref().context("no tasks section")?;
    let dir = Path::new(&t.dir);
    let inputs = Inputs::from([
        ("tasks".into(), json_sha256(&t.data_key())),
        ("vocab_size".into(), json_sha256(&config.model.vocab_size)),
        (
            "paths".into(),
            json_sha256(&[&config.training.tokenizer, &config.training.data]),
        ),
    ]);
    if StageManifest::current(dir, "tasks", &inputs).is_some() {
        eprintln!(
            "stage 0/4 tasks: skipped, its outputs match its inputs ({})",
            dir.join(MANIFEST_FILE).display()
        );
        return Ok(());
    }
    eprintln!(
        "stage 0/4 tasks: {} problems, tokenizer, SFT shards",
        t.family
    );
    let made = make_task_data(config, file)?;
    for (path, n) in &made.files {
        eprintln!("  {n} problems -> {}", path.display());
    }
    eprintln!(
        "  tokenizer: {} ids -> {}; shards: {} train tokens, {} held-out tokens -> {}",
        made.vocab_size,
        config.training.tokenizer,
        made.shards.train.count,
        made.shards.val.count,
        config.training.data
    );
    let data = Path::new(&config.training.data);
    let mut outputs: Vec<PathBuf> = made.files.iter().map(|(p, _)| p.clone()).collect();
    outputs.push(PathBuf::from(&config.training.tokenizer));
    outputs.push(data.join("train.json"));
    outputs.push(data.join("val.json"));
    StageManifest::write(
        dir,
        "tasks",
        inputs,
        &outputs,
        json!({ "vocab_size": made.vocab_size }),
    )?;
    Ok(())
}

/// Stage 1: pretraining (fresh, or resumed with `resume` when a checkpoint is there), then the
/// score on the whole held-out shard, recorded in the manifest.
fn pretrain_stage(
    config: &RunConfig,
    device: &Device,
    resume: bool,
    inputs: Inputs,
) -> Result<StageManifest> {
    let t = &config.training;
    let out = Path::new(&t.out_dir);
    eprintln!("stage 1/4 pretrain: the backbone -> {}", out.display());
    crate::size_check::refuse_too_large(&config.model, t.batch_size, t.seq_len, device)?;
    let mut trainer: Trainer<LmTask> = if resume && latest_checkpoint(out).is_some() {
        let trainer = Trainer::resume(config.clone(), device).context("resuming stage 1")?;
        if !trainer.resume_warnings().is_empty() {
            eprintln!(
                "warning: resuming with changed settings: {}",
                trainer.resume_warnings().join(", ")
            );
        }
        trainer
    } else {
        remove_run(out).with_context(|| format!("replacing the run in {}", out.display()))?;
        Trainer::new(config.clone(), device)?
    };
    let params: usize = trainer
        .task
        .model
        .parameters()
        .iter()
        .map(|p| p.elem_count())
        .sum();
    let mut progress = TrainProgress::new(
        t.max_steps,
        trainer.state_step,
        t.eval_every.min(50),
        out.join("loss.png"),
    );
    progress.say(&format!(
        "pretrain: {params} parameters on {}, batch {} x {}, up to {} steps or {} minutes",
        device.name(),
        t.batch_size,
        t.seq_len,
        t.max_steps,
        t.time_budget_minutes
            .map_or("unlimited".into(), |m| format!("{m}"))
    ));
    trainer.run(None, &mut progress)?;
    progress.finish();
    trainer.training.eval_tokens = 0;
    let held_out = trainer.evaluate()?;
    eprintln!(
        "held out: loss {:.4} nats/token, {:.4} bits/byte over {} tokens",
        held_out.loss, held_out.bpb, held_out.tokens
    );
    let checkpoint = latest_checkpoint(out).context("stage 1 ended without a checkpoint")?;
    Ok(StageManifest::write(
        out,
        "pretrain",
        inputs,
        &[checkpoint.join("model.safetensors")],
        json!({ "held_out_bpb": held_out.bpb }),
    )?)
}
