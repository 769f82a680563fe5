//! `crsm-train critic --config C`: stage 4. Value targets on the distill stage's traces through
//! the stage-1 backbone's head, one value head per layer trained with the `critic` section's
//! loop, and the held-out report: Pearson and Spearman per head and for the heads' mean, each
//! head's held-out RMSE, `critic.out_dir/critic.json` and `calibration.png`. The last line is
//! `critic: pearson_mean=P spearman_mean=S minutes=M` for scripts.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use crsm::train::critic_config::CriticStageConfig;
use crsm::train::critic_stage::{CriticReport, critic};
use crsm::train::{RunConfig, remove_run};

use crate::device_arg::DeviceOverride;
use crate::plot::plot_calibration;
use crate::progress::TrainProgress;
use crate::run_start_arg::RunStart;

#[derive(Args)]
pub struct CriticArgs {
    /// Run config with `distill` and `critic` sections, e.g. configs/nano.json.
    #[arg(long)]
    config: std::path::PathBuf,
    #[command(flatten)]
    device: DeviceOverride,
    /// --resume | --overwrite, for the heads' run in critic.out_dir/heads.
    #[command(flatten)]
    start: RunStart,
}

pub fn run(args: CriticArgs) -> Result<()> {
    let file = args.config.display().to_string();
    let config = RunConfig::from_json_file(&args.config)?;
    let device = args.device.open(&config.training.device)?;
    let c = config
        .critic
        .clone()
        .with_context(|| format!("{file}: no `critic` section (see configs/nano.json)"))?;
    let d = config
        .distill
        .clone()
        .with_context(|| format!("{file}: no `distill` section, whose traces the critic reads"))?;
    let loop_config = c.loop_config(&d.traces_dir("train"), &file)?;
    let out = Path::new(&loop_config.out_dir);
    if args.start.overwrite {
        remove_run(out).with_context(|| format!("overwriting {}", out.display()))?;
    }
    let mut progress = TrainProgress::new(
        loop_config.max_steps,
        0,
        loop_config.eval_every.min(50),
        out.join("loss.png"),
    );
    let report = critic(&config, &file, &device, args.start.resume, &mut progress)?;
    progress.finish();
    print_report(&report, &c)?;
    let m = &report.mean;
    println!(
        "critic: pearson_mean={:.4} spearman_mean={:.4} minutes={:.2}",
        m.pearson, m.spearman, report.minutes
    );
    Ok(())
}

/// Draws `calibration.png` and prints the per-head table (`c`: the run file's critic section).
pub fn print_report(report: &CriticReport, c: &CriticStageConfig) -> Result<()> {
    let plot = Path::new(&c.out_dir).join("calibration.png");
    plot_calibration(
        &report.calibration,
        &format!("critic calibration, H = {}, gamma = {}", c.horizon, c.gamma),
        &plot,
    )?;
    println!(
        "critic on {} held-out positions (report {}, plot {}):",
        report.held_out_positions,
        Path::new(&c.out_dir).join("critic.json").display(),
        plot.display()
    );
    println!("  head   Pearson  Spearman  RMSE (std units)");
    for (i, h) in report.heads.iter().enumerate() {
        println!(
            "  {i:<5} {:>8.3} {:>9.3} {:>10.3}",
            h.pearson, h.spearman, h.rmse_standard
        );
    }
    let m = &report.mean;
    println!(
        "  mean  {:>8.3} {:>9.3} {:>10.3}",
        m.pearson, m.spearman, m.rmse_standard
    );
    let b = &report.certainty_only;
    println!(
        "  the policy's certainty alone (baseline): Pearson {:.3}, Spearman {:.3}",
        b.pearson, b.spearman
    );
    if let Some((train, val)) = report.task_success {
        println!(
            "  task reward: the stage-1 model's sampled answers were right {:.1}% (the critic's problems), {:.1}% (held-out)",
            100.0 * train,
            100.0 * val
        );
    }
    if let Some(steps) = &report.by_answer_step {
        let cells: Vec<String> = steps
            .iter()
            .map(|s| format!("{}: {:.2} ({:.2})", s.step, s.pearson, s.certainty_pearson))
            .collect();
        println!(
            "  Pearson by answer token (certainty alone): {}",
            cells.join(", ")
        );
    }
    if let Some(s) = &report.same_text {
        println!(
            "  mean on unseen windows of the training text: Pearson {:.3}, Spearman {:.3}",
            s.pearson, s.spearman
        );
    }
    Ok(())
}
