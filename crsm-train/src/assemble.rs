//! `crsm-train assemble --config C`: stage 3. Gathers the stage-1 backbone, the distill stage's
//! standardiser and dynamics (and broadcaster, when its file is there), the critic's heads and
//! fresh injection gates into one checkpoint folder, `assemble.out_dir` (`crsm::train::assemble`;
//! the folder's layout is in `crsm::latent::checkpoint`). The last line is
//! `assemble: stages=<list> out_dir=<dir>` for scripts.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use crsm::train::RunConfig;
use crsm::train::assemble::assemble;

use crate::device_arg::DeviceOverride;

#[derive(Args)]
pub struct AssembleArgs {
    /// Run config with an `assemble` section, e.g. configs/nano.json.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    device: DeviceOverride,
}

pub fn run(args: AssembleArgs) -> Result<()> {
    let file = args.config.display().to_string();
    let config = RunConfig::from_json_file(&args.config)?;
    let device = args.device.open(&config.training.device)?;
    let report = assemble(&config, &file, &device, true)?;
    for note in &report.notes {
        eprintln!("{note}");
    }
    println!(
        "assemble: stages={} out_dir={}",
        report
            .stages
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        report.out_dir.display()
    );
    Ok(())
}
