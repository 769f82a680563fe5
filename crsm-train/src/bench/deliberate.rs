//! `crsm-train bench deliberate`: what deliberation costs generation. Per-token latency (p50,
//! p99) and tokens/s for `off`, `async` and `sync` on an assembled CRSM, and the plans posted and
//! applied per 100 tokens.
//!
//! Fairness: the modes run interleaved, round after round, on the same prompt and seeds, and every
//! mode's generation runs on the same rayon pool of `--threads` threads (the planner thread has
//! its own `--planner-threads` pool, as in use). Latencies are pooled over the rounds; each
//! statistic is the pooled value of this run. A token's latency is the time of the model call that
//! produced its logits (prefill for the first), so sampling and printing are not counted.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use crsm::generate::deliberate::{DeliberateSession, Mode, Steering};
use crsm::generate::{GenerateOptions, NextToken, SamplingConfig, generate};
use crsm::latent::CrsmCheckpoint;
use crsm::planner::SearchConfig;
use crsm::planner::leaf_evaluator::LeafValue;
use crsm::planner::planning::{DynamicsMode, PlannerConfig};

use crate::device_arg::DeviceArg;

#[derive(Args)]
pub struct DeliberateBenchArgs {
    /// An assembled CRSM folder (`crsm-train quickstart` makes runs/nano/crsm).
    #[arg(long, default_value = "runs/nano/crsm")]
    model: PathBuf,
    /// Tokens generated per mode per round.
    #[arg(long, default_value_t = 100)]
    tokens: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Generation's pool (every mode); the planner's own pool.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long, default_value_t = 1)]
    planner_threads: usize,
    #[arg(long, default_value_t = 16)]
    simulations: usize,
    #[arg(long, default_value_t = 1)]
    lag: u64,
    #[command(flatten)]
    device: DeviceArg,
    #[arg(long)]
    json: bool,
}

/// Times each call that returns logits.
struct Timed<'a> {
    inner: &'a mut DeliberateSession,
    seconds: Vec<f64>,
}

impl NextToken for Timed<'_> {
    fn prefill(&mut self, prompt: &[u32]) -> crsm::Result<Vec<f32>> {
        let t = Instant::now();
        let out = self.inner.prefill(prompt);
        self.seconds.push(t.elapsed().as_secs_f64());
        out
    }
    fn step(&mut self, id: u32) -> crsm::Result<Vec<f32>> {
        let t = Instant::now();
        let out = self.inner.step(id);
        self.seconds.push(t.elapsed().as_secs_f64());
        out
    }
    fn chosen(&mut self, id: u32) -> crsm::Result<()> {
        self.inner.chosen(id)
    }
    fn take_rewind(&mut self) -> Option<usize> {
        self.inner.take_rewind()
    }
}

#[derive(serde::Serialize)]
struct ModeResult {
    mode: &'static str,
    p50_ms: f64,
    p99_ms: f64,
    tokens_per_s: f64,
    posted_per_100: f64,
    applied_per_100: f64,
    late_per_100: f64,
    dropped_per_100: f64,
    diverged_per_100: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn run(args: DeliberateBenchArgs) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build()?;
    pool.install(|| bench(&args))
}

fn bench(args: &DeliberateBenchArgs) -> Result<()> {
    let device = args.device.open()?;
    let checkpoint = CrsmCheckpoint::load(&args.model, &device).with_context(|| {
        format!(
            "loading {} (an assembled CRSM: run `crsm-train quickstart` first)",
            args.model.display()
        )
    })?;
    let model = crsm::planner::latent_model::LatentModel::from_checkpoint(checkpoint)?;
    let planner = PlannerConfig {
        dynamics: DynamicsMode::Learned,
        search: SearchConfig::for_budget(args.simulations, 8),
        lag: args.lag,
        leaf_value: LeafValue::Critic,
        trace_nodes: 0,
    };
    let opts = GenerateOptions {
        max_new_tokens: args.tokens,
        sampling: SamplingConfig::greedy(),
        ..GenerateOptions::default()
    };
    let prompt: Vec<u32> = (0..16u32).map(|t| (t * 37 + 5) % 256).collect();
    let modes = [Mode::Off, Mode::Async, Mode::Sync];
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut counts = [[0u64; 6]; 3];
    for round in 0..args.rounds + 1 {
        for (m, &mode) in modes.iter().enumerate() {
            let mut session = DeliberateSession::new(
                model.clone(),
                mode,
                Steering::default(),
                planner.clone(),
                args.planner_threads,
                round as u64,
            )?;
            let mut timed = Timed {
                inner: &mut session,
                seconds: Vec::new(),
            };
            let ids = generate(&mut timed, &prompt, &opts, None, |_| Ok(()))?;
            let taken = timed.seconds;
            let stats = session.finish()?;
            if round == 0 {
                continue; // warm-up
            }
            seconds[m].extend(taken);
            let p = stats.plans;
            for (c, v) in counts[m].iter_mut().zip([
                ids.len() as u64,
                p.received,
                p.applied,
                p.decayed,
                p.diverged,
                p.dropped,
            ]) {
                *c += v;
            }
        }
    }
    let results: Vec<ModeResult> = modes
        .iter()
        .enumerate()
        .map(|(m, mode)| {
            let mut s = seconds[m].clone();
            s.sort_by(f64::total_cmp);
            let per_100 = |x: u64| 100.0 * x as f64 / counts[m][0] as f64;
            ModeResult {
                mode: mode.name(),
                p50_ms: percentile(&s, 0.5) * 1e3,
                p99_ms: percentile(&s, 0.99) * 1e3,
                tokens_per_s: s.len() as f64 / s.iter().sum::<f64>(),
                posted_per_100: per_100(counts[m][1]),
                applied_per_100: per_100(counts[m][2]),
                late_per_100: per_100(counts[m][3]),
                diverged_per_100: per_100(counts[m][4]),
                dropped_per_100: per_100(counts[m][5]),
            }
        })
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "model": args.model, "device": device.name(), "tokens": args.tokens,
                "rounds": args.rounds, "threads": args.threads,
                "planner_threads": args.planner_threads, "simulations": args.simulations,
                "lag": args.lag, "modes": results,
                "async_p50_over_off": results[1].p50_ms / results[0].p50_ms,
            })
        );
        return Ok(());
    }
    println!(
        "deliberate bench on {} ({}; {} rounds x {} tokens, {} generation thread(s), {} planner thread(s), {} simulations, lag {}):",
        args.model.display(),
        device.name(),
        args.rounds,
        args.tokens,
        args.threads,
        args.planner_threads,
        args.simulations,
        args.lag
    );
    println!(
        "  mode    p50 ms   p99 ms   tokens/s   per 100 tokens: posted applied late dropped diverged"
    );
    for r in &results {
        println!(
            "  {:<6} {:>7.3} {:>8.3} {:>10.1}   {:>25.1} {:>7.1} {:>4.1} {:>7.1} {:>8.1}",
            r.mode,
            r.p50_ms,
            r.p99_ms,
            r.tokens_per_s,
            r.posted_per_100,
            r.applied_per_100,
            r.late_per_100,
            r.dropped_per_100,
            r.diverged_per_100
        );
    }
    println!(
        "  async p50 / off p50 = {:.3}",
        results[1].p50_ms / results[0].p50_ms
    );
    Ok(())
}
