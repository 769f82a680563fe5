//! `crsm-train distill --config C`: stage 2. Collects latent traces from the stage-1 checkpoint
//! in `training.out_dir`, fits the identity and least-squares baselines, trains the dynamics
//! with the `distill` section's loop, and prints the open-loop fit of all three on held-out
//! traces (also in `distill.out_dir/fit.json`). The last line is
//! `distill: dynamics_r2_1=A dynamics_r2_8=B linear_r2_1=C linear_r2_8=D minutes=M` for scripts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use crsm::train::distill::{DistillObserver, DistillReport, distill};
use crsm::train::metrics::{EvalRecord, Metrics, SkipRecord, StepRecord};
use crsm::train::{RunConfig, TrainObserver, TrainingConfig, remove_run};
use indicatif::{ProgressBar, ProgressStyle};

use crate::device_arg::DeviceOverride;
use crate::progress::TrainProgress;
use crate::run_start_arg::RunStart;

#[derive(Args)]
pub struct DistillArgs {
    /// Run config with a `distill` section, e.g. configs/nano.json.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    device: DeviceOverride,
    /// --resume | --overwrite, for the dynamics' run in distill.out_dir/dynamics (traces on disk
    /// are always reused, and an unfinished collection continued).
    #[command(flatten)]
    start: RunStart,
}

/// A bar per trace split, then the trainer's bar.
pub struct Progress {
    traces: Option<(String, ProgressBar)>,
    train: Option<TrainProgress>,
    max_steps: usize,
    eval_every: usize,
    plot: PathBuf,
}

impl Progress {
    /// For the dynamics' loop `training` (its steps, evaluations and loss curve).
    pub fn new(training: &crsm::train::TrainingConfig) -> Self {
        Progress {
            traces: None,
            train: None,
            max_steps: training.max_steps,
            eval_every: training.eval_every,
            plot: Path::new(&training.out_dir).join("loss.png"),
        }
    }

    pub fn finish(&self) {
        if let Some(t) = &self.train {
            t.finish();
        }
    }

    fn train(&mut self) -> &mut TrainProgress {
        if let Some((_, bar)) = self.traces.take() {
            bar.finish_and_clear();
        }
        self.train.get_or_insert_with(|| {
            TrainProgress::new(
                self.max_steps,
                0,
                self.eval_every.min(50),
                self.plot.clone(),
            )
        })
    }
}

impl DistillObserver for Progress {
    fn on_traces(&mut self, split: &str, done: usize, total: usize) {
        if self.traces.as_ref().is_none_or(|(s, _)| s != split) {
            if let Some((_, bar)) = self.traces.take() {
                bar.finish_and_clear();
            }
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} parts, {elapsed} elapsed, ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{split} traces"));
            self.traces = Some((split.to_string(), bar));
        }
        if let Some((_, bar)) = &self.traces {
            bar.set_position(done as u64);
            if bar.is_hidden() && done == total {
                eprintln!("{split} traces: {total} parts");
            }
        }
    }

    fn on_note(&mut self, line: &str) {
        if let Some((_, bar)) = self.traces.take() {
            bar.finish_and_clear();
        }
        eprintln!("{line}");
    }

    fn on_loop(&mut self, training: &TrainingConfig) {
        if let Some(t) = self.train.take() {
            t.finish();
        }
        self.max_steps = training.max_steps;
        self.eval_every = training.eval_every;
        self.plot = Path::new(&training.out_dir).join("loss.png");
    }
}

impl TrainObserver for Progress {
    fn on_step(&mut self, r: &StepRecord, max_steps: usize) {
        self.train().on_step(r, max_steps);
    }
    fn on_skip(&mut self, r: &SkipRecord) {
        self.train().on_skip(r);
    }
    fn on_eval(&mut self, r: &EvalRecord) {
        self.train().on_eval(r);
    }
    fn on_checkpoint(&mut self, step: usize, dir: &Path, metrics: &Metrics) {
        self.train().on_checkpoint(step, dir, metrics);
    }
}

pub fn run(args: DistillArgs) -> Result<()> {
    let file = args.config.display().to_string();
    let config = RunConfig::from_json_file(&args.config)?;
    let device = args.device.open(&config.training.device)?;
    let d = config
        .distill
        .clone()
        .with_context(|| format!("{file}: no `distill` section (see configs/nano.json)"))?;
    let loops = [
        Some(d.loop_config(&file)?),
        d.broadcaster_loop_config(&file)?,
    ];
    if args.start.overwrite {
        for l in loops.iter().flatten() {
            let out = Path::new(&l.out_dir);
            remove_run(out).with_context(|| format!("overwriting {}", out.display()))?;
        }
    }
    let mut progress = Progress::new(&loops[0].clone().expect("the dynamics' loop"));
    let report = distill(&config, &file, &device, args.start.resume, &mut progress)?;
    progress.finish();
    print_report(&report, &d.out_dir);
    let r2 = |f: &crsm::latent::FitReport, k| f.at(k).map_or(f64::NAN, |x| x.r2_change);
    println!(
        "distill: dynamics_r2_1={:.4} dynamics_r2_8={:.4} linear_r2_1={:.4} linear_r2_8={:.4} minutes={:.2}",
        r2(&report.dynamics, 1),
        r2(&report.dynamics, 8),
        r2(&report.linear, 1),
        r2(&report.linear, 8),
        report.minutes
    );
    Ok(())
}

/// The fit table of the three predictors and the dynamics' size (`out_dir`: where fit.json is).
pub fn print_report(report: &DistillReport, out_dir: &str) {
    println!(
        "open-loop fit on held-out traces ({} -> {}):",
        report.source_checkpoint,
        Path::new(out_dir).join("fit.json").display()
    );
    println!(
        "  k   R^2 identity / linear / dynamics     policy top-1 identity / linear / dynamics   KL (nats)"
    );
    for ((i, l), g) in report
        .identity
        .fits
        .iter()
        .zip(&report.linear.fits)
        .zip(&report.dynamics.fits)
    {
        println!(
            "  {:<3} {:>8.3} / {:>6.3} / {:>8.3}          {:>6.3} / {:>6.3} / {:>6.3}            {:.3} / {:.3} / {:.3}",
            i.k,
            i.r2_change,
            l.r2_change,
            g.r2_change,
            i.policy_top1.unwrap_or(f64::NAN),
            l.policy_top1.unwrap_or(f64::NAN),
            g.policy_top1.unwrap_or(f64::NAN),
            i.policy_kl.unwrap_or(f64::NAN),
            l.policy_kl.unwrap_or(f64::NAN),
            g.policy_kl.unwrap_or(f64::NAN),
        );
    }
    println!(
        "  dynamics: {} parameters ({:.2}% of the backbone's {})",
        report.dynamics_parameters,
        100.0 * report.dynamics_parameters as f64 / report.backbone_parameters as f64,
        report.backbone_parameters
    );
    if let Some(b) = &report.broadcaster {
        println!(
            "broadcaster on {} held-out state pairs ({} parameters, {:.2}% of the backbone):",
            b.pairs,
            report.broadcaster_parameters,
            100.0 * report.broadcaster_parameters as f64 / report.backbone_parameters as f64
        );
        let layers: Vec<String> = b.delta_r2.iter().map(|r| format!("{r:.3}")).collect();
        println!(
            "  R^2 of the state deltas (0 = no injection): {:.3} (per layer {})",
            b.delta_r2_all,
            layers.join(", ")
        );
        println!("  after injecting, distance to the target          none / broadcast / exact h'");
        for a in &b.after {
            let (m, k) = (&a.latent_mse, &a.token_kl);
            println!(
                "    {} step(s) on: latent mse (standard units)   {:.4} / {:.4} / {:.4}",
                a.steps, m.none, m.broadcast, m.exact
            );
            println!(
                "    {} step(s) on: next-token KL (nats)          {:.4} / {:.4} / {:.4}",
                a.steps, k.none, k.broadcast, k.exact
            );
        }
    }
}
