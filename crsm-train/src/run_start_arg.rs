//! `--resume | --overwrite`: how a training command treats a folder that holds a run, one
//! definition for every stage's command.

use clap::Args;

#[derive(Args)]
pub struct RunStart {
    /// Continue the run from the newest complete checkpoint in its folder.
    #[arg(long)]
    pub resume: bool,
    /// Delete the run in its folder (checkpoints and metrics) and start over; without it, a
    /// folder that holds a run is refused.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
}
