//! `crsm-train bench`: throughput of the engine's real paths, measured on the device asked for.
//! `train` times forward + backward + AdamW steps; `decode` times prefill and recurrent decode.
//! Each prints a human line, or with `--json` one JSON line that scripts and tables read.

mod decode;
mod deliberate;
mod train;

use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(Subcommand)]
enum Which {
    /// Training tokens/s: forward, backward and an optimizer step on random tokens.
    Train(train::TrainBenchArgs),
    /// Prefill and decode tokens/s of a random model (mamba-130m's shape by default).
    Decode(decode::DecodeBenchArgs),
    /// Per-token latency and plans per 100 tokens of off / async / sync deliberation.
    Deliberate(deliberate::DeliberateBenchArgs),
}

pub fn run(args: BenchArgs) -> Result<()> {
    match args.which {
        Which::Train(a) => train::run(a),
        Which::Decode(a) => decode::run(a),
        Which::Deliberate(a) => deliberate::run(a),
    }
}

/// Runs `warmup` untimed calls, then timed calls until both `min_iters` and `min_seconds` are
/// reached; returns the median seconds per call (each call timed alone, so a burst of load from
/// elsewhere moves the answer less than it moves a mean). `work` must finish its device work (read
/// a result back) so the clock measures the computation, not its submission.
fn time_per_call(
    warmup: usize,
    min_iters: usize,
    min_seconds: f64,
    mut work: impl FnMut() -> Result<()>,
) -> Result<f64> {
    for _ in 0..warmup {
        work()?;
    }
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < min_iters || start.elapsed().as_secs_f64() < min_seconds {
        let call = Instant::now();
        work()?;
        times.push(call.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
