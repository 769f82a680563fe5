//! `crsm-train`: the command-line program of crsm. For now: `info` (devices and a self-check).
//! Training, generation and benchmarks arrive as subcommands here.

mod info;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "crsm-train", version, about = "Continuous Reasoning State Models: train, run and inspect")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List compute devices and check that the chosen one computes what the cpu computes.
    Info(info::InfoArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info(args) => info::run(args),
    }
}
