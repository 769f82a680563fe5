//! Stage 2, `crsm-train distill`: latent traces from the frozen stage-1 backbone, the identity
//! and least-squares baselines, the dynamics trained by the one trainer on `DynamicsTask`, and
//! the open-loop fit report of all three on held-out traces (`fit.json`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::Device;
use crate::autograd::no_grad;
use crate::data::{TokenShard, sha256_file};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::latent::fit::{FitReport, Identity, LatentPredictor, evaluate};
use crate::latent::trace_shards::{FORMAT, TraceHeader, TraceSet, VERSION, collect};
use crate::latent::{
    BackboneHead, Dynamics, DynamicsConfig, LinearBaseline, Standardizer, TokenInputs,
};
use crate::tensor::Tensor;
use crate::train::dynamics_task::DynamicsTask;
use crate::train::stage_source::{StageSource, stage1_source, traces_record};
use crate::train::{DistillConfig, RunConfig, Start, TrainObserver, Trainer};

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
    pub backbone_parameters: usize,
    pub source_checkpoint: String,
    pub minutes: f64,
}

/// Watches the stage: trace collection per part, then the trainer's steps.
pub trait DistillObserver: TrainObserver {
    fn on_traces(&mut self, _split: &str, _done: usize, _total: usize) {}
    fn on_note(&mut self, _line: &str) {}
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
    let start = if resume { Start::Resume } else { Start::Fresh };
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
    let report = DistillReport {
        identity,
        linear,
        dynamics,
        dynamics_parameters: task.dynamics.parameter_count(),
        backbone_parameters: model.parameters().iter().map(|p| p.elem_count()).sum(),
        source_checkpoint: source.display().to_string(),
        minutes: started.elapsed().as_secs_f64() / 60.0,
    };
    let text = serde_json::to_string_pretty(&report).expect("a report serialises");
    write_atomic(&Path::new(&d.out_dir).join("fit.json"), text.as_bytes())?;
    Ok(report)
}
