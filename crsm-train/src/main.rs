//! `crsm-train`: the command-line program of crsm: `info` (devices and a self-check), `logits` and
//! `generate` on any HF-style Mamba folder. Training and benchmarks arrive as subcommands here.

mod bench;
mod generate;
mod info;
mod logits;
mod memtest;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "crsm-train",
    version,
    about = "Continuous Reasoning State Models: train, run and inspect"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List compute devices and check that the chosen one computes what the cpu computes.
    Info(info::InfoArgs),
    /// Write the parallel forward's logits for given ids to a safetensors file.
    Logits(logits::LogitsArgs),
    /// Generate from a prompt with the recurrent step, streaming to stdout.
    Generate(generate::GenerateArgs),
    /// Throughput: `bench train` (training tokens/s), `bench decode` (prefill and decode tokens/s).
    Bench(bench::BenchArgs),
    /// Peak device memory of one training step of a run config, and whether it fits a budget.
    Memtest(memtest::MemtestArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info(args) => info::run(args),
        Command::Logits(args) => logits::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Memtest(args) => memtest::run(args),
    }
}
