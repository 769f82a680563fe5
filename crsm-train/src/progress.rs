//! The training progress bar: steps done, tokens/s, loss and ETA on one line (indicatif hides it
//! when stderr is not a terminal), and evaluations, skipped steps and checkpoints as lines above
//! it, so a log file still tells the story.

use std::path::{Path, PathBuf};

use crsm::train::TrainObserver;
use crsm::train::metrics::{EvalRecord, Metrics, SkipRecord, StepRecord};
use indicatif::{ProgressBar, ProgressStyle};

pub struct TrainProgress {
    bar: ProgressBar,
    /// Print a plain log line every this many steps (for logs without a terminal).
    log_every: usize,
    /// Where the loss curve is redrawn at every checkpoint.
    plot: PathBuf,
}

impl TrainProgress {
    pub fn new(max_steps: usize, start_step: usize, log_every: usize, plot: PathBuf) -> Self {
        let bar = ProgressBar::new(max_steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps, {msg}, {elapsed} elapsed, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix("train");
        bar.set_position(start_step as u64);
        bar.reset_eta();
        TrainProgress {
            bar,
            log_every: log_every.max(1),
            plot,
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Prints a line above the bar (or plainly when there is no terminal).
    pub fn say(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

impl TrainObserver for TrainProgress {
    fn on_step(&mut self, r: &StepRecord, _max_steps: usize) {
        self.bar.set_position(r.step as u64);
        self.bar.set_message(format!(
            "loss {:.3}, {:.0} tokens/s, lr {:.2e}",
            r.loss, r.tokens_per_s, r.lr
        ));
        if r.step.is_multiple_of(self.log_every) && self.bar.is_hidden() {
            eprintln!(
                "step {}: loss {:.4}, grad norm {:.3}, lr {:.2e}, {:.0} tokens/s, {:.0}s",
                r.step, r.loss, r.grad_norm, r.lr, r.tokens_per_s, r.elapsed_s
            );
        }
    }

    fn note(&mut self, line: &str) {
        self.say(line);
    }

    fn on_skip(&mut self, r: &SkipRecord) {
        self.say(&format!("step {}: skipped: {}", r.step, r.reason));
    }

    fn on_eval(&mut self, r: &EvalRecord) {
        // A task that predicts no text (the dynamics) has no bits per byte.
        let line = if r.bpb.is_nan() {
            format!(
                "step {}: held-out loss {:.4} ({} items)",
                r.step, r.loss, r.tokens
            )
        } else {
            format!(
                "step {}: held-out loss {:.4} nats/token, {:.4} bits/byte ({} tokens)",
                r.step, r.loss, r.bpb, r.tokens
            )
        };
        self.say(&line);
    }

    fn on_checkpoint(&mut self, step: usize, dir: &Path, metrics: &Metrics) {
        self.say(&format!("step {step}: checkpoint -> {}", dir.display()));
        let title = format!("loss, step {step}");
        if let Err(e) = crate::plot::plot_loss_curve(metrics, &title, &self.plot) {
            self.say(&format!("could not draw {}: {e:#}", self.plot.display()));
        }
    }
}
