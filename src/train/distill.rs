//! Stage 2, `crsm-train distill`: latent traces (and counterfactual state pairs) from the frozen
//! stage-1 backbone, the identity and least-squares baselines, the dynamics trained by the one
//! trainer on `DynamicsTask`, the open-loop fit report of all three on held-out traces, then the
//! delta broadcaster trained on the pairs (`BroadcasterTask`) and its held-out report (all in
//! `fit.json`; the broadcaster's weights also in `out_dir/broadcaster.safetensors`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::Device;
use crate::autograd::no_grad;
use crate::data::{TokenShard, sha256_file};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::latent::broadcast_fit::{BroadcastFit, broadcast_fit};
use crate::latent::fit::{FitReport, Identity, LatentPredictor, evaluate};
use crate::latent::trace_shards::{FORMAT, TraceHeader, TraceSet, VERSION, collect};
use crate::latent::{
    BackboneHead, Broadcaster, BroadcasterConfig, Dynamics, DynamicsConfig, LatentTrace,
    LinearBaseline, Standardizer, TokenInputs,
};
use crate::model::Backbone;
use crate::tensor::Tensor;
use crate::train::broadcaster_task::BroadcasterTask;
use crate::train::checkpoint::latest_checkpoint;
use crate::train::dynamics_task::DynamicsTask;
use crate::train::stage_source::{StageSource, stage1_source, traces_record};
use crate::train::{DistillConfig, RunConfig, Start, Task, TrainObserver, Trainer};

/// Open-loop horizons of the fit report.
pub const HORIZONS: [usize; 4] = [1, 2, 4, 8];
/// Held-out starts every this many positions of each window.
const FIT_STRIDE: usize = 4;
/// Training parts the least-squares baseline is fitted on (its normal equations are summed over
/// them; more parts cost time, not memory).
const LINEAR_PARTS: usize = 4;

/// What the stage reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DistillReport {
    pub identity: FitReport,
    pub linear: FitReport,
    pub dynamics: FitReport,
    pub dynamics_parameters: usize,
    /// The broadcaster's held-out report (absent without a `broadcaster` section).
    pub broadcaster: Option<BroadcastFit>,
    pub broadcaster_parameters: usize,
    pub backbone_parameters: usize,
    pub source_checkpoint: String,
    pub minutes: f64,
}

/// Watches the stage: trace collection per part, then the trainer's steps.
pub trait DistillObserver: TrainObserver {
    fn on_traces(&mut self, _split: &str, _done: usize, _total: usize) {}
    fn on_note(&mut self, _line: &str) {}
    /// A training loop (the dynamics', then the broadcaster's) is about to start.
    fn on_loop(&mut self, _training: &crate::train::TrainingConfig) {}
}

/// The GRU stepped without gradients, as a `LatentPredictor`.
struct Learned<'a> {
    dynamics: &'a Dynamics,
    inputs: &'a TokenInputs,
    device: Device,
}

impl LatentPredictor for Learned<'_> {
    fn step(&self, s: &[f32], tokens: &[u32]) -> Result<Vec<f32>> {
        let _off = no_grad();
        let c = self.dynamics.config;
        let b = tokens.len();
        let s = Tensor::from_f32(s.to_vec(), &[b, c.layers, c.d_model], &self.device)?;
        let x = self
            .inputs
            .of(&Tensor::from_u32(tokens.to_vec(), &[b], &self.device)?)?;
        self.dynamics.step(&s, &x)?.to_vec_f32()
    }
}

fn section(config: &RunConfig, file: &str) -> Result<DistillConfig> {
    config.distill.clone().ok_or_else(|| Error::Config {
        file: file.into(),
        field: "distill".into(),
        detail: "missing section: the distill stage needs one (see configs/nano.json)".into(),
    })
}

/// Runs the stage for the run file `config` (read from `file`): `resume` continues the
/// dynamics' training from its newest checkpoint; trace collection always continues what is on
/// disk.
pub fn distill(
    config: &RunConfig,
    file: &str,
    device: &Device,
    resume: bool,
    observer: &mut dyn DistillObserver,
) -> Result<DistillReport> {
    let started = Instant::now();
    let d = section(config, file)?;
    let t = &config.training;
    let first = format!("run `crsm-train pretrain --config {file}` first");
    let StageSource {
        dir: source,
        model,
        hash: source_hash,
    } = stage1_source(config, file, device, &first)?;
    let tokenizer_hash = sha256_file(Path::new(&t.tokenizer))?;
    let mut sets = Vec::new();
    for (split, windows, seed) in [
        ("train", d.windows, d.seed),
        ("val", d.val_windows, d.seed.wrapping_add(1)),
    ] {
        let shard = TokenShard::open(Path::new(&t.data), split, Some(&tokenizer_hash))?;
        let header = TraceHeader {
            format: FORMAT.into(),
            version: VERSION,
            source_hash: source_hash.clone(),
            token_shard: shard.file().to_string(),
            tokenizer_hash: tokenizer_hash.clone(),
            seed,
            len: d.window_len,
            windows,
            windows_per_part: d.windows_per_part,
            batch: d.trace_batch,
            layers: model.config.applications(),
            d_model: model.config.hidden_size,
            pairs_per_window: d.pairs_per_window(),
            pair_top_k: d.broadcaster.as_ref().map_or(0, |b| b.top_k),
            d_inner: model.config.d_inner(),
            d_state: model.config.state_size,
        };
        let dir = PathBuf::from(d.traces_dir(split));
        collect(&dir, &header, &model, &shard, None, &mut |done, total| {
            observer.on_traces(split, done, total)
        })?;
        sets.push(TraceSet::open(&dir, Some(&source_hash))?);
    }
    let val_set = sets.pop().expect("two splits");
    let train_set = sets.pop().expect("two splits");
    let val = val_set.first_parts(usize::MAX)?;
    let (layers, dm) = (train_set.header.layers, train_set.header.d_model);
    let standardizer = Standardizer::fit(&train_set.part(0)?.z, layers, dm)?;
    let inputs = TokenInputs::new(&model.embeddings)?;
    let vocab = model.config.vocab_size;
    let table = {
        let _off = no_grad();
        let ids = Tensor::from_u32((0..vocab as u32).collect(), &[vocab], device)?;
        inputs.of(&ids)?.to_vec_f32()?
    };
    let ks: Vec<usize> = HORIZONS.into_iter().filter(|&k| k < d.window_len).collect();
    let head = BackboneHead(&model);
    observer.on_note("fit: the identity and least-squares baselines on held-out traces");
    let identity = evaluate(&Identity, &val, &standardizer, &ks, FIT_STRIDE, Some(&head))?;
    let linear_data = train_set.first_parts(LINEAR_PARTS)?;
    let linear = LinearBaseline::fit(&linear_data, &standardizer, table, 1e-3)?;
    drop(linear_data);
    let linear = evaluate(&linear, &val, &standardizer, &ks, FIT_STRIDE, Some(&head))?;

    let training = d.loop_config(file)?;
    let traces_dir = PathBuf::from(d.traces_dir("train"));
    let record = traces_record(tokenizer_hash, &traces_dir, &training, "distill", file)?;
    let make = |checkpoint: Option<&Path>, position| {
        let dynamics = Dynamics::init(
            DynamicsConfig {
                layers,
                d_model: dm,
            },
            d.seed,
            device,
        )?;
        let set = TraceSet::open(&traces_dir, Some(&source_hash))?;
        let mut task = DynamicsTask::new(
            dynamics,
            standardizer.clone(),
            &model.embeddings,
            set,
            val.clone(),
            d.unroll,
            position,
        )?;
        if let Some(dir) = checkpoint {
            task.load_weights(dir)?;
        }
        Ok(task)
    };
    let start = start_of(resume, &training.out_dir);
    observer.on_loop(&training);
    let mut trainer = Trainer::start(training, start, record, None, make)?;
    trainer.run(None, observer)?;
    let task = &trainer.task;
    let learned = Learned {
        dynamics: &task.dynamics,
        inputs: &inputs,
        device: device.clone(),
    };
    let dynamics = evaluate(
        &learned,
        &val,
        &task.standardizer,
        &ks,
        FIT_STRIDE,
        Some(&head),
    )?;
    let standardizer = task.standardizer.clone();
    let dynamics_parameters = task.dynamics.parameter_count();
    drop(trainer);
    let broadcaster = match d.broadcaster_loop_config(file)? {
        None => None,
        Some(training) => {
            let b = d
                .broadcaster
                .as_ref()
                .expect("a loop config means a section");
            let config = BroadcasterConfig {
                layers,
                d_model: dm,
                d_inner: model.config.d_inner(),
                d_state: model.config.state_size,
                rank: b.rank,
                channel_rank: b.channel_rank,
            };
            let parts = BroadcastParts {
                model: &model,
                standardizer: &standardizer,
                train: &traces_dir,
                val: &val_set,
                val_trace: &val,
                source_hash: &source_hash,
                batch: d.trace_batch,
                out_dir: Path::new(&d.out_dir),
            };
            let record = traces_record(
                sha256_file(Path::new(&t.tokenizer))?,
                &traces_dir,
                &training,
                "distill.broadcaster",
                file,
            )?;
            observer.on_note("broadcaster: training on the state pairs");
            Some(train_broadcaster(
                config, d.seed, training, resume, record, parts, observer,
            )?)
        }
    };
    let report = DistillReport {
        identity,
        linear,
        dynamics,
        dynamics_parameters,
        broadcaster_parameters: broadcaster.as_ref().map_or(0, |(_, n)| *n),
        broadcaster: broadcaster.map(|(fit, _)| fit),
        backbone_parameters: model.parameters().iter().map(|p| p.elem_count()).sum(),
        source_checkpoint: source.display().to_string(),
        minutes: started.elapsed().as_secs_f64() / 60.0,
    };
    let text = serde_json::to_string_pretty(&report).expect("a report serialises");
    write_atomic(&Path::new(&d.out_dir).join("fit.json"), text.as_bytes())?;
    Ok(report)
}

/// `Start::Resume` when asked and the loop has a checkpoint to resume from (a resumed stage may
/// not have reached this loop before it stopped), else `Start::Fresh`.
fn start_of(resume: bool, out_dir: &str) -> Start {
    if resume && latest_checkpoint(Path::new(out_dir)).is_some() {
        Start::Resume
    } else {
        Start::Fresh
    }
}

/// What the broadcaster's training reads.
struct BroadcastParts<'a> {
    model: &'a Backbone,
    standardizer: &'a Standardizer,
    train: &'a Path,
    val: &'a TraceSet,
    val_trace: &'a LatentTrace,
    source_hash: &'a str,
    batch: usize,
    out_dir: &'a Path,
}

/// Trains the broadcaster on the training pairs, writes its weights to
/// `out_dir/broadcaster.safetensors` and reports it on the held-out pairs: (report, parameters).
fn train_broadcaster(
    config: BroadcasterConfig,
    seed: u64,
    training: crate::train::TrainingConfig,
    resume: bool,
    record: crate::train::drift::RunRecord,
    p: BroadcastParts<'_>,
    observer: &mut dyn DistillObserver,
) -> Result<(BroadcastFit, usize)> {
    let device = p.model.device();
    let mut val_pairs = p.val.pairs(0)?;
    for part in 1..p.val.header.parts() {
        let offset = (part * p.val.header.windows_per_part) as u32;
        val_pairs.extend(p.val.pairs(part)?, offset);
    }
    let start = start_of(resume, &training.out_dir);
    observer.on_loop(&training);
    let make = |checkpoint: Option<&Path>, position| {
        let set = TraceSet::open(p.train, Some(p.source_hash))?;
        let mut broadcaster = Broadcaster::init(config, seed, &device)?;
        broadcaster.fit_scales(&set.pairs(0)?);
        let mut task = BroadcasterTask::new(
            broadcaster,
            p.standardizer.clone(),
            set,
            val_pairs.clone(),
            position,
        )?;
        if let Some(dir) = checkpoint {
            task.load_weights(dir)?;
        }
        Ok(task)
    };
    let mut trainer = Trainer::start(training, start, record, None, make)?;
    trainer.run(None, observer)?;
    let task = &trainer.task;
    task.save_weights(p.out_dir)?;
    observer.on_note("broadcaster: held-out report (replaying the held-out windows)");
    let fit = broadcast_fit(
        p.model,
        &task.broadcaster,
        &task.standardizer,
        p.val_trace,
        &val_pairs,
        p.batch,
    )?;
    Ok((fit, task.broadcaster.parameter_count()))
}
