//! `crsm-train memtest`: the peak device memory of one training micro-step of a run config (its
//! model, its batch, sequence length and `checkpoint_segments`), and whether it fits a budget
//! (by default the machine's memory). Exit status 0 when it fits, 3 when it does not, so scripts
//! can gate a run on it.
//!
//! The step runs on the meta device (shapes without values, `crsm::backend::meta`), which keeps
//! the engine's byte accounting without allocating: a config larger than the machine is answered
//! in seconds, not killed by the OOM killer. Sizes that overflow, or whose lower bound
//! (`train::run_size`) already exceeds the budget, are answered before the step is even counted.
//! `--real` also runs the step on `--device` and reports its measured peak beside the count.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use crsm::Device;
use crsm::model::Backbone;
use crsm::train::RunConfig;
use crsm::train::memtest::{StepMemory, measure_training_step};
use crsm::train::run_size::{check_fits, run_size};

use crate::device_arg::CpuDeviceArg;
use crate::size_check::device_memory;

/// The exit status when the step does not fit the budget.
const DOES_NOT_FIT: i32 = 3;

#[derive(Args)]
pub struct MemtestArgs {
    /// A run config (configs/*.json: model + training sections).
    #[arg(long)]
    config: PathBuf,
    /// Sequences per micro-step (default: the config's batch_size).
    #[arg(long)]
    batch: Option<usize>,
    /// Tokens per sequence (default: the config's seq_len).
    #[arg(long)]
    seq: Option<usize>,
    /// Checkpoint segments (default: the config's checkpoint_segments; 0 = off).
    #[arg(long)]
    segments: Option<usize>,
    /// The memory to fit in: 6GB (10^9 bytes), 6GiB (2^30), 512MB, 512MiB, 4kB, or plain bytes
    /// (default: the machine's memory, where the device reports it).
    #[arg(long, value_parser = parse_bytes)]
    budget: Option<u64>,
    #[command(flatten)]
    device: CpuDeviceArg,
    /// Also run the step for real on the device (after the count says it fits) and report its
    /// measured peak.
    #[arg(long)]
    real: bool,
    /// Print one JSON line instead of sentences.
    #[arg(long)]
    json: bool,
}

pub fn run(args: MemtestArgs) -> Result<()> {
    let run = RunConfig::from_json_file(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let device = args.device.open()?;
    let batch = args.batch.unwrap_or(run.training.batch_size);
    let seq = args.seq.unwrap_or(run.training.seq_len);
    let segments = args.segments.unwrap_or(run.training.checkpoint_segments);
    let budget = args.budget.or_else(|| device_memory(&device));
    // Sizes that overflow, or a lower bound already over the budget: no need to count the step.
    match (run_size(&run.model, batch, seq), budget) {
        (Err(e), _) => does_not_fit(&e.to_string()),
        (Ok(size), Some(b)) => {
            if let Err(e) = check_fits(&size, b, "the budget") {
                does_not_fit(&e.to_string())
            }
        }
        _ => {}
    }
    let m = count_step(&run, batch, seq, segments, &Device::meta())?;
    let fits = budget.map(|b| m.peak <= b);
    let real = if args.real && fits != Some(false) {
        Some(count_step(&run, batch, seq, segments, &device)?)
    } else {
        None
    };
    // The driver's view, where wgpu reports it: what its allocator holds after a real step.
    let driver = match &device {
        Device::Wgpu(ctx) if real.is_some() => ctx.driver_memory(),
        _ => None,
    };
    if args.json {
        let line = serde_json::json!({
            "config": args.config.display().to_string(), "device": device.name(),
            "batch": batch, "seq": seq, "checkpoint_segments": segments,
            "peak_bytes": m.peak, "parameter_bytes": m.parameters,
            "optimizer_state_bytes": m.optimizer_state, "resident_bytes": m.resident,
            "transient_bytes": m.transient(), "forward_peak_bytes": m.forward_peak,
            "backward_peak_bytes": m.backward_peak, "optimizer_peak_bytes": m.optimizer_peak,
            "driver_allocated_bytes": driver.map(|d| d.0), "driver_reserved_bytes": driver.map(|d| d.1),
            "budget_bytes": budget, "fits": fits, "counted_on": "meta",
            "real_peak_bytes": real.map(|r| r.peak),
        });
        println!("{line}");
    } else {
        println!(
            "{}: one step of batch {batch} x {seq}, {segments} checkpoint segments, counted \
             on the meta device (as {} allocates)",
            args.config.display(),
            device.name()
        );
        println!("  peak            {}", human(m.peak));
        println!("    parameters    {}", human(m.parameters));
        println!("    AdamW moments {}", human(m.optimizer_state));
        println!(
            "    step (activations, gradients, updates) {}",
            human(m.transient())
        );
        println!(
            "  phase peaks: forward {}, backward {}, optimizer {}",
            human(m.forward_peak),
            human(m.backward_peak),
            human(m.optimizer_peak)
        );
        if let Some(r) = real {
            println!("  measured on {}: peak {}", device.name(), human(r.peak));
        }
        if let Some((allocated, reserved)) = driver {
            println!(
                "  driver after the step: {} allocated, {} reserved",
                human(allocated),
                human(reserved)
            );
        }
        match (budget, fits) {
            (Some(b), Some(true)) => println!("fits {} ({} to spare)", human(b), human(b - m.peak)),
            (Some(b), _) => println!("does NOT fit {} ({} over)", human(b), human(m.peak - b)),
            _ => {}
        }
    }
    if fits == Some(false) {
        std::process::exit(DOES_NOT_FIT);
    }
    Ok(())
}

/// One step of `run`'s model at batch x seq on `device`, measured by the engine's accounting.
fn count_step(
    run: &RunConfig,
    batch: usize,
    seq: usize,
    segments: usize,
    device: &Device,
) -> Result<StepMemory> {
    let mut model = Backbone::init(run.model.clone(), 0, device)?;
    model.set_checkpoint_segments(segments);
    Ok(measure_training_step(&mut model, batch, seq)?)
}

/// Says why the run cannot fit (on stderr) and exits with `DOES_NOT_FIT`.
fn does_not_fit(why: &str) -> ! {
    eprintln!("does NOT fit: {why}");
    std::process::exit(DOES_NOT_FIT);
}

/// `6GB` = 6 * 10^9 (SI, as drive and card makers write it), `6GiB` = 6 * 2^30; also kB/KiB, MB/MiB,
/// TB/TiB, `B` and plain numbers (bytes). Case-insensitive units; decimals allowed (`1.5GB`).
fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("`{text}` does not start with a number"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        other => {
            bail!("unknown unit `{other}` in `{text}` (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)")
        }
    };
    Ok((value * scale).round() as u64)
}

/// Bytes as MiB/GiB with the exact count beside them.
fn human(bytes: u64) -> String {
    let mib = bytes as f64 / (1u64 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.2} GiB ({bytes} B)", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB ({bytes} B)")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn budgets_parse_in_si_and_binary_units() {
        assert_eq!(parse_bytes("6GB").unwrap(), 6_000_000_000);
        assert_eq!(parse_bytes("6GiB").unwrap(), 6 << 30);
        assert_eq!(parse_bytes("512MB").unwrap(), 512_000_000);
        assert_eq!(parse_bytes("512 MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1.5gb").unwrap(), 1_500_000_000);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("6 GX").is_err());
        assert!(parse_bytes("GB").is_err());
    }
}
