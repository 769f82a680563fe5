//! The training loop: micro-batches with gradient accumulation, global-norm clipping, AdamW with
//! the warmup + cosine schedule, a guard that skips a step whose loss or gradients are not finite,
//! dynamic loss scaling when `training.precision` is f16 (`loss_scale`), periodic evaluation on
//! the validation shard, `metrics.json`, and checkpoints from which
//! `Trainer::resume` continues the very same run.
//!
//! The loop reports to a `TrainObserver` (the command line draws a progress bar with it); the
//! library itself prints nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::Device;
use crate::autograd::{Gradients, no_grad};
use crate::data::{
    BatchStream, DataPosition, TokenShard, bits_per_byte, eval_batches, sha256_file,
};
use crate::error::{Error, Result};
use crate::model::Backbone;
use crate::ops;
use crate::tensor::Tensor;
use crate::train::checkpoint::{
    STATE_FILE, TrainerState, latest_checkpoint, load_checkpoint, save_checkpoint,
};
use crate::train::drift::RunRecord;
use crate::train::loss_scale::LossScaler;
use crate::train::metrics::{EvalRecord, Metrics, SkipRecord, StepRecord};
use crate::train::run_dir::{RunLock, refuse_earlier_run};
use crate::train::{AdamW, AdamWConfig, LrSchedule, Precision, RunConfig, causal_lm_loss};

/// After this many skipped steps in a row the run stops with an error: the model is broken, and
/// going on would only burn time. Gradient overflows that the loss scale answers by halving do
/// not count, until the scale is at its floor.
pub const MAX_CONSECUTIVE_SKIPS: usize = 20;

pub const METRICS_FILE: &str = "metrics.json";

/// What the loop tells whoever watches it.
pub trait TrainObserver {
    fn on_step(&mut self, _record: &StepRecord, _max_steps: usize) {}
    fn on_skip(&mut self, _record: &SkipRecord) {}
    fn on_eval(&mut self, _record: &EvalRecord) {}
    /// After each checkpoint, with the whole record so far (e.g. to redraw the loss curve).
    fn on_checkpoint(&mut self, _step: usize, _dir: &Path, _metrics: &Metrics) {}
}

/// An observer that ignores everything (tests, scripts).
pub struct Silent;
impl TrainObserver for Silent {}

/// What one call of `Trainer::step` did.
pub enum StepOutcome {
    Took(StepRecord),
    Skipped(SkipRecord),
}

pub struct Trainer {
    pub config: RunConfig,
    pub model: Backbone,
    optimizer: AdamW,
    schedule: LrSchedule,
    train: BatchStream,
    val: TokenShard,
    tokenizer: PathBuf,
    out_dir: PathBuf,
    pub state_step: usize,
    tokens: u64,
    /// Training time of earlier sessions of this run (from the checkpoint) plus this one's.
    elapsed_before: f64,
    started: Instant,
    consecutive_skips: usize,
    /// Present when `training.precision` is f16.
    scaler: Option<LossScaler>,
    pub metrics: Metrics,
    /// What this run trains on and how, saved with each checkpoint.
    record: RunRecord,
    /// Settings changed since the checkpoint this run resumed from, one per field.
    resume_warnings: Vec<String>,
    /// This run's hold on `out_dir`, released when the trainer is dropped.
    _lock: RunLock,
}

/// Weight decay applies to matrices and embeddings, not to norms, biases, A_log or D (Mamba's
/// `_no_weight_decay` parameters), fusion weights or adapters (all of rank 1 except A_log).
fn decays(name: &str, shape: &[usize]) -> bool {
    shape.len() >= 2 && !name.ends_with("A_log")
}

fn optimizer_for(model: &Backbone, config: &RunConfig) -> AdamW {
    let t = &config.training;
    let mask = model
        .named_parameters()
        .iter()
        .map(|(name, p)| decays(name, p.shape()))
        .collect();
    AdamW::new(AdamWConfig {
        beta1: t.beta1,
        beta2: t.beta2,
        eps: t.eps,
        weight_decay: t.weight_decay,
    })
    .with_decay_mask(mask)
}

fn schedule_for(config: &RunConfig) -> LrSchedule {
    let t = &config.training;
    LrSchedule {
        peak: t.lr,
        floor: t.min_lr,
        warmup_steps: t.warmup_steps,
        total_steps: t.max_steps,
    }
}

/// Opens the train and validation shards of `config`, checking they were made with its tokenizer
/// and fit its model's vocabulary; also returns the tokenizer's hash.
fn open_shards(config: &RunConfig) -> Result<(TokenShard, TokenShard, String)> {
    let t = &config.training;
    let hash = sha256_file(Path::new(&t.tokenizer))?;
    let dir = Path::new(&t.data);
    let train = TokenShard::open(dir, "train", Some(&hash))?;
    let val = TokenShard::open(dir, "val", Some(&hash))?;
    for shard in [&train, &val] {
        let v = shard.header().vocab_size;
        if v > config.model.vocab_size {
            return Err(Error::Config {
                file: t.data.clone(),
                field: "model.vocab_size".into(),
                detail: format!(
                    "the shards' tokenizer has {v} tokens, the model only {}",
                    config.model.vocab_size
                ),
            });
        }
    }
    Ok((train, val, hash))
}

impl Trainer {
    /// A new run: a freshly initialised model (seeded by `training.seed`) at step 0. Refused
    /// when `training.out_dir` holds a run (`run_dir::remove_run` deletes one).
    pub fn new(config: RunConfig, device: &Device) -> Result<Self> {
        let lock = lock_for_new_run(&config)?;
        let model = Backbone::init(config.model.clone(), config.training.seed, device)?;
        Self::from_parts(config, model, None, lock)
    }

    /// A new run that starts from the weights of `init` (a model folder), e.g. SFT from a
    /// pretrained checkpoint; the optimizer and schedule start fresh.
    pub fn from_weights(config: RunConfig, init: &Path, device: &Device) -> Result<Self> {
        let lock = lock_for_new_run(&config)?;
        let model = Backbone::load(init, device)?;
        if model.config != config.model {
            return Err(Error::Config {
                file: init.join("config.json").display().to_string(),
                field: "model".into(),
                detail: "the initial weights' config differs from the run config's model section"
                    .into(),
            });
        }
        Self::from_parts(config, model, None, lock)
    }

    /// Continues the run whose checkpoint is in `training.out_dir`: the same model, optimizer
    /// state, step, data position and metrics, so it goes on as if never stopped.
    pub fn resume(config: RunConfig, device: &Device) -> Result<Self> {
        let out_dir = PathBuf::from(&config.training.out_dir);
        let lock = RunLock::acquire(&out_dir)?;
        let dir = latest_checkpoint(&out_dir).ok_or_else(|| Error::Io {
            path: out_dir.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no checkpoint to resume from",
            ),
        })?;
        let loaded = load_checkpoint(&dir, device)?;
        if loaded.model.config != config.model {
            return Err(Error::Config {
                file: dir.join("config.json").display().to_string(),
                field: "model".into(),
                detail: "the checkpoint's model differs from the run config's model section".into(),
            });
        }
        let state_file = dir.join(STATE_FILE).display().to_string();
        let resumed = Resumed {
            moments: loaded.moments,
            state: loaded.state,
            state_file,
        };
        Self::from_parts(config, loaded.model, Some(resumed), lock)
    }

    fn from_parts(
        config: RunConfig,
        mut model: Backbone,
        resumed: Option<Resumed>,
        lock: RunLock,
    ) -> Result<Self> {
        model.set_checkpoint_segments(config.training.checkpoint_segments);
        let (train_shard, val, tokenizer_hash) = open_shards(&config)?;
        let record = RunRecord::new(
            tokenizer_hash,
            train_shard.header(),
            val.header(),
            &config.training,
        )?;
        let mut resume_warnings = Vec::new();
        if let Some(r) = &resumed
            && let Some(saved) = &r.state.run
        {
            resume_warnings = record.check_resume_of(saved, &r.state_file)?;
        }
        let t = &config.training;
        let device = model.device();
        if t.precision == Precision::F16 && !device.supports_f16() {
            return Err(Error::Config {
                file: "the run config".into(),
                field: "training.precision".into(),
                detail: format!(
                    "f16 needs a device with shader-f16, and {} has none; use \"f32\"",
                    device.name()
                ),
            });
        }
        let out_dir = PathBuf::from(&t.out_dir);
        let mut optimizer = optimizer_for(&model, &config);
        let mut trainer_state = TrainerState {
            step: 0,
            optimizer_steps: 0,
            tokens: 0,
            elapsed_s: 0.0,
            data: DataPosition {
                seed: t.seed,
                epoch: 0,
                index: 0,
            },
            loss_scale: None,
            run: None,
        };
        let mut metrics = Metrics::default();
        if let Some(Resumed { moments, state, .. }) = resumed {
            optimizer.restore(state.optimizer_steps, moments);
            let metrics_path = out_dir.join(METRICS_FILE);
            if metrics_path.is_file() {
                metrics = Metrics::load(&metrics_path)?;
                metrics.truncate_after(state.step);
            }
            trainer_state = state;
        }
        let mut scaler = (t.precision == Precision::F16)
            .then(|| LossScaler::new(t.loss_scale_init, t.loss_scale_growth_interval));
        if let (Some(s), Some(saved)) = (scaler.as_mut(), trainer_state.loss_scale) {
            s.restore(saved);
        }
        let train = BatchStream::resume(train_shard, t.seq_len, trainer_state.data)?;
        Ok(Trainer {
            schedule: schedule_for(&config),
            tokenizer: PathBuf::from(&t.tokenizer),
            out_dir,
            state_step: trainer_state.step,
            tokens: trainer_state.tokens,
            elapsed_before: trainer_state.elapsed_s,
            started: Instant::now(),
            consecutive_skips: 0,
            scaler,
            config,
            model,
            optimizer,
            train,
            val,
            metrics,
            record,
            resume_warnings,
            _lock: lock,
        })
    }

    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The settings changed since the checkpoint this run resumed from (`drift.rs`), each as
    /// `training.<field> <was> -> <now>`, for the caller to warn about.
    pub fn resume_warnings(&self) -> &[String] {
        &self.resume_warnings
    }

    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    /// One optimizer step: `grad_accum` micro-batches, their gradients summed, clipped by global
    /// norm, then AdamW at the schedule's rate. A non-finite loss or gradient norm skips the
    /// update (the batches are still consumed, so the data order does not depend on it).
    ///
    /// With a loss scale s (f16), backward is seeded with s instead of 1; the global norm is the
    /// scaled gradients' norm divided by s, and 1/s joins the clipping factor in AdamW's gradient
    /// scale, so no pass over the gradients is added. s is a power of two, so both are exact.
    pub fn step(&mut self) -> Result<StepOutcome> {
        let t = self.config.training.clone();
        let device = self.model.device();
        let mut summed: Option<Gradients> = None;
        let mut loss_sum = 0f64;
        let mut bad = None;
        let loss_scale = self.scaler.as_ref().map(LossScaler::scale);
        for _ in 0..t.grad_accum {
            let batch = self.train.next_batch(t.batch_size);
            self.tokens += (batch.batch * batch.seq) as u64;
            if bad.is_some() {
                continue;
            }
            let inputs = Tensor::from_u32(batch.inputs, &[batch.batch, batch.seq], &device)?;
            let targets = Tensor::from_u32(batch.targets, &[batch.batch, batch.seq], &device)?;
            // f16 matmul operands in the forward (and so in its backward); evaluation stays f32.
            let _precision = ops::set_f16_matmuls(t.precision == Precision::F16);
            let loss = causal_lm_loss(&self.model, &inputs, &targets)?;
            let value = loss.scalar()?;
            if !value.is_finite() {
                bad = Some(format!("loss is {value}"));
                continue;
            }
            loss_sum += value as f64;
            let grads = match loss_scale {
                Some(s) => loss.backward_with(&Tensor::full(s, loss.shape(), &device)?)?,
                None => loss.backward()?,
            };
            summed = Some(match summed {
                None => grads,
                Some(acc) => add_gradients(acc, grads, &self.model)?,
            });
        }
        self.state_step += 1;
        let step = self.state_step;
        let grad_norm = match (&bad, &summed) {
            (None, Some(g)) => {
                let params = self.model.parameters();
                let list: Vec<&Tensor> = params.iter().filter_map(|p| g.get(p)).collect();
                ops::global_norm(&list)? / t.grad_accum as f32 / loss_scale.unwrap_or(1.0)
            }
            _ => f32::NAN,
        };
        let overflow = bad.is_none() && !grad_norm.is_finite();
        if overflow {
            bad = Some(format!("gradient norm is {grad_norm}"));
        }
        if let Some(mut reason) = bad {
            // An overflow above the floor is the scale's fault: halve it and do not count it.
            let mut blame_scale = false;
            if let (true, Some(s)) = (overflow, self.scaler.as_mut()) {
                let before = s.scale();
                blame_scale = s.overflowed();
                reason = format!(
                    "{reason} at loss scale {before} (overflow), loss scale now {}",
                    s.scale()
                );
            }
            if !blame_scale {
                self.consecutive_skips += 1;
            }
            let record = SkipRecord {
                step,
                reason: format!("{reason}; step skipped, weights unchanged"),
                loss_scale: self.scaler.as_ref().map(LossScaler::scale),
            };
            self.metrics.skipped.push(record.clone());
            if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS {
                return Err(Error::Diverged {
                    skips: self.consecutive_skips,
                    step,
                    last_reason: record.reason,
                });
            }
            return Ok(StepOutcome::Skipped(record));
        }
        self.consecutive_skips = 0;
        if let Some(s) = self.scaler.as_mut() {
            s.update(true);
        }
        let grads = summed.ok_or_else(|| Error::Autograd("no gradients after a step".into()))?;
        let clip = if t.grad_clip > 0.0 && grad_norm > t.grad_clip {
            t.grad_clip / grad_norm
        } else {
            1.0
        };
        let lr = self.schedule.at(step - 1);
        self.optimizer.step(
            self.model.parameters_mut(),
            &grads,
            lr,
            clip / t.grad_accum as f32 / loss_scale.unwrap_or(1.0),
        )?;
        let elapsed = self.elapsed();
        let record = StepRecord {
            step,
            loss: (loss_sum / t.grad_accum as f64) as f32,
            lr,
            grad_norm,
            tokens: self.tokens,
            tokens_per_s: self.tokens as f64 / elapsed.max(1e-9),
            elapsed_s: elapsed,
            loss_scale,
        };
        self.metrics.steps.push(record.clone());
        Ok(StepOutcome::Took(record))
    }

    /// Mean loss and bits per byte on the first `eval_tokens` tokens of the validation shard.
    pub fn evaluate(&mut self) -> Result<EvalRecord> {
        let _off = no_grad();
        let t = &self.config.training;
        let device = self.model.device();
        let (mut nats, mut count) = (0f64, 0usize);
        let max_tokens = if t.eval_tokens == 0 {
            usize::MAX
        } else {
            t.eval_tokens
        };
        for batch in eval_batches(&self.val, t.batch_size, t.seq_len, max_tokens) {
            if batch.loss_tokens == 0 {
                continue;
            }
            let inputs = Tensor::from_u32(batch.inputs, &[batch.batch, batch.seq], &device)?;
            let targets = Tensor::from_u32(batch.targets, &[batch.batch, batch.seq], &device)?;
            let loss = causal_lm_loss(&self.model, &inputs, &targets)?.scalar()?;
            nats += loss as f64 * batch.loss_tokens as f64;
            count += batch.loss_tokens;
        }
        if count == 0 {
            return Err(Error::InvalidArgument {
                op: "Trainer::evaluate",
                detail: format!("the validation shard in {} has no scored tokens", t.data),
            });
        }
        let record = EvalRecord {
            step: self.state_step,
            loss: nats / count as f64,
            bpb: bits_per_byte(nats, count, self.val.header()).unwrap_or(f64::NAN),
            tokens: count,
        };
        self.metrics.evals.push(record.clone());
        self.save_metrics()?;
        Ok(record)
    }

    pub fn save_metrics(&self) -> Result<()> {
        self.metrics.save(&self.out_dir.join(METRICS_FILE))
    }

    /// Writes the metrics and the checkpoint for the current step. The metrics go first: a crash
    /// between the two leaves metrics ahead of the checkpoint, which a resume truncates, never
    /// behind it.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let state = TrainerState {
            step: self.state_step,
            optimizer_steps: self.optimizer.steps(),
            tokens: self.tokens,
            elapsed_s: self.elapsed(),
            data: self.train.position(),
            loss_scale: self.scaler.as_ref().map(LossScaler::state),
            run: Some(self.record.clone()),
        };
        self.save_metrics()?;
        save_checkpoint(
            &self.out_dir,
            &self.model,
            &self.optimizer,
            &state,
            &self.tokenizer,
        )
    }

    /// Runs to `max_steps` (or until the time budget is spent or `stop_at` is reached), with
    /// evaluations and checkpoints on schedule and both once more at the end. Returns the last
    /// evaluation.
    pub fn run(
        &mut self,
        stop_at: Option<usize>,
        observer: &mut dyn TrainObserver,
    ) -> Result<Option<EvalRecord>> {
        let t = self.config.training.clone();
        let last = stop_at.unwrap_or(t.max_steps).min(t.max_steps);
        let budget_s = t.time_budget_minutes.map(|m| m * 60.0);
        let mut last_eval = None;
        while self.state_step < last {
            match self.step()? {
                StepOutcome::Took(r) => observer.on_step(&r, t.max_steps),
                StepOutcome::Skipped(r) => observer.on_skip(&r),
            }
            let step = self.state_step;
            let out_of_time = budget_s.is_some_and(|b| self.elapsed() >= b);
            let ending = step >= last || out_of_time;
            if step.is_multiple_of(t.eval_every) || ending {
                let e = self.evaluate()?;
                observer.on_eval(&e);
                last_eval = Some(e);
            }
            if step.is_multiple_of(t.checkpoint_every) || ending {
                let dir = self.save_checkpoint()?;
                observer.on_checkpoint(step, &dir, &self.metrics);
            }
            if out_of_time {
                break;
            }
        }
        Ok(last_eval)
    }
}

/// What a resumed run starts from: the optimizer's moments and the counters of its checkpoint,
/// and the file those came from (for errors).
struct Resumed {
    moments: Vec<(Tensor, Tensor)>,
    state: TrainerState,
    state_file: String,
}

/// Locks the out_dir of a new run, refusing one that holds an earlier run.
fn lock_for_new_run(config: &RunConfig) -> Result<RunLock> {
    let out_dir = Path::new(&config.training.out_dir);
    let lock = RunLock::acquire(out_dir)?;
    refuse_earlier_run(out_dir)?;
    Ok(lock)
}

/// `a + b` per parameter (gradient accumulation), without recording a graph.
fn add_gradients(mut a: Gradients, mut b: Gradients, model: &Backbone) -> Result<Gradients> {
    let _off = no_grad();
    for p in model.parameters() {
        match (a.remove(p), b.remove(p)) {
            (Some(x), Some(y)) => a.insert(p, ops::add(&x, &y)?),
            (Some(x), None) | (None, Some(x)) => a.insert(p, x),
            (None, None) => {}
        }
    }
    Ok(a)
}
