//! The training loop, for every stage: micro-batches with gradient accumulation, global-norm
//! clipping, AdamW with the warmup + cosine schedule, a guard that skips a step whose loss or
//! gradients are not finite, dynamic loss scaling when `training.precision` is f16
//! (`loss_scale`), periodic held-out evaluation, `metrics.json`, and checkpoints from which a
//! resumed run continues the very same run. What is trained on what is the `Task` (`task.rs`):
//! the backbone on next-token loss (`lm_task.rs`, whose constructors are `Trainer::new`,
//! `from_weights` and `resume`), the dynamics on its unrolled loss (`dynamics_task.rs`).
//!
//! The loop reports to a `TrainObserver` (the command line draws a progress bar with it); the
//! library itself prints nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::autograd::{Gradients, no_grad};
use crate::data::DataPosition;
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::Tensor;
use crate::train::checkpoint::{
    STATE_FILE, TrainerState, latest_checkpoint, load_checkpoint, save_checkpoint,
};
use crate::train::drift::RunRecord;
use crate::train::loss_scale::LossScaler;
use crate::train::metrics::{EvalRecord, Metrics, SkipRecord, StepRecord};
use crate::train::run_dir::{RunLock, refuse_earlier_run};
use crate::train::task::Task;
use crate::train::{AdamW, AdamWConfig, LrSchedule, Precision, TrainingConfig};

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
    /// A line about work a stage does outside the loop (e.g. answering problems for rewards).
    fn note(&mut self, _line: &str) {}
}

/// An observer that ignores everything (tests, scripts).
pub struct Silent;
impl TrainObserver for Silent {}

/// What one call of `Trainer::step` did.
pub enum StepOutcome {
    Took(StepRecord),
    Skipped(SkipRecord),
}

/// The loop over a task `T` (`LmTask`: the backbone on next-token loss; `DynamicsTask`, ...).
pub struct Trainer<T: Task> {
    /// The loop's settings (the run config's `training` section, or a stage's).
    pub training: TrainingConfig,
    pub task: T,
    optimizer: AdamW,
    schedule: LrSchedule,
    /// Copied into each checkpoint when the task reads text.
    tokenizer: Option<PathBuf>,
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

fn optimizer_for(decays: Vec<bool>, t: &TrainingConfig) -> AdamW {
    AdamW::new(AdamWConfig {
        beta1: t.beta1,
        beta2: t.beta2,
        eps: t.eps,
        weight_decay: t.weight_decay,
    })
    .with_decay_mask(decays)
}

fn schedule_for(t: &TrainingConfig) -> LrSchedule {
    LrSchedule {
        peak: t.lr,
        floor: t.min_lr,
        warmup_steps: t.warmup_steps,
        total_steps: t.max_steps,
    }
}

/// How a task's run begins: fresh, or from the newest checkpoint of its folder.
pub enum Start {
    Fresh,
    Resume,
}

impl<T: Task> Trainer<T> {
    /// A run of `task` in `training.out_dir`. `Start::Fresh` locks a folder that holds no earlier
    /// run and starts at step 0 (`make_task(None, seed position)`); `Start::Resume` locks the
    /// folder, finds its newest complete checkpoint, has `make_task(Some(dir), saved position)`
    /// build the task with that checkpoint's weights, and restores the optimizer, the counters
    /// and the metrics, so the run goes on as if never stopped. `record` says what the run trains
    /// on; a resume refuses other data and names changed settings (`drift.rs`).
    pub fn start(
        training: TrainingConfig,
        start: Start,
        record: RunRecord,
        tokenizer: Option<PathBuf>,
        make_task: impl FnOnce(Option<&Path>, DataPosition) -> Result<T>,
    ) -> Result<Self> {
        let out_dir = PathBuf::from(&training.out_dir);
        let lock = RunLock::acquire(&out_dir)?;
        let fresh_position = DataPosition {
            seed: training.seed,
            epoch: 0,
            index: 0,
        };
        let (task, resumed) = match start {
            Start::Fresh => {
                refuse_earlier_run(&out_dir)?;
                (make_task(None, fresh_position)?, None)
            }
            Start::Resume => {
                let dir = latest_checkpoint(&out_dir).ok_or_else(|| Error::Io {
                    path: out_dir.display().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no checkpoint to resume from",
                    ),
                })?;
                let state_file = dir.join(STATE_FILE).display().to_string();
                let saved: TrainerState = crate::io::read_json(&dir.join(STATE_FILE))?;
                let task = make_task(Some(&dir), saved.data)?;
                let device = task
                    .named_parameters()
                    .first()
                    .map(|(_, p)| p.device())
                    .unwrap_or(crate::Device::Cpu);
                let loaded = load_checkpoint(&dir, &task.named_parameters(), &device)?;
                (task, Some((loaded.moments, loaded.state, state_file)))
            }
        };
        let mut resume_warnings = Vec::new();
        if let Some((_, state, file)) = &resumed
            && let Some(saved) = &state.run
        {
            resume_warnings = record.check_resume_of(saved, file)?;
        }
        let t = &training;
        let mut optimizer = optimizer_for(task.decays(), t);
        let mut trainer_state = TrainerState {
            step: 0,
            optimizer_steps: 0,
            tokens: 0,
            elapsed_s: 0.0,
            data: fresh_position,
            loss_scale: None,
            run: None,
        };
        let mut metrics = Metrics::default();
        if let Some((moments, state, _)) = resumed {
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
        Ok(Trainer {
            schedule: schedule_for(t),
            tokenizer,
            out_dir,
            state_step: trainer_state.step,
            tokens: trainer_state.tokens,
            elapsed_before: trainer_state.elapsed_s,
            started: Instant::now(),
            consecutive_skips: 0,
            scaler,
            training,
            task,
            optimizer,
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
        let t = self.training.clone();
        let mut summed: Option<Gradients> = None;
        let mut loss_sum = 0f64;
        let mut bad = None;
        let loss_scale = self.scaler.as_ref().map(LossScaler::scale);
        for _ in 0..t.grad_accum {
            // Every micro-batch is drawn, also after a bad one, so the data order does not
            // depend on the numbers.
            let (loss, tokens) = self.task.next_loss(t.batch_size)?;
            self.tokens += tokens;
            if bad.is_some() {
                continue;
            }
            let device = loss.device();
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
                Some(acc) => add_gradients(acc, grads, &self.task)?,
            });
        }
        self.state_step += 1;
        let step = self.state_step;
        let grad_norm = match (&bad, &summed) {
            (None, Some(g)) => {
                let params = self.task.named_parameters();
                let list: Vec<&Tensor> = params.iter().filter_map(|(_, p)| g.get(p)).collect();
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
            self.task.parameters_mut(),
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

    /// Mean loss (and bits per byte where the task reads text) on the first `eval_tokens` items of
    /// the held-out data.
    pub fn evaluate(&mut self) -> Result<EvalRecord> {
        let t = &self.training;
        let e = self.task.evaluate(t.batch_size, t.eval_tokens)?;
        let record = EvalRecord {
            step: self.state_step,
            loss: e.loss,
            bpb: e.bpb.unwrap_or(f64::NAN),
            tokens: e.count,
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
            data: self.task.data_position(),
            loss_scale: self.scaler.as_ref().map(LossScaler::state),
            run: Some(self.record.clone()),
        };
        self.save_metrics()?;
        save_checkpoint(
            &self.out_dir,
            &self.task,
            &self.optimizer,
            &state,
            self.tokenizer.as_deref(),
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
        let t = self.training.clone();
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

/// `a + b` per parameter (gradient accumulation), without recording a graph.
fn add_gradients(mut a: Gradients, mut b: Gradients, task: &impl Task) -> Result<Gradients> {
    let _off = no_grad();
    for (_, p) in task.named_parameters() {
        match (a.remove(p), b.remove(p)) {
            (Some(x), Some(y)) => a.insert(p, ops::add(&x, &y)?),
            (Some(x), None) | (None, Some(x)) => a.insert(p, x),
            (None, None) => {}
        }
    }
    Ok(a)
}
