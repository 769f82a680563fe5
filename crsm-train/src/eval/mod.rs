//! `crsm-train eval --model DIR --tasks FILE.jsonl`: exact match of a CRSM on problems of any
//! family, under each variant of a grid (`--deliberate off,async,sync`, `--lag 1,2,4`,
//! `--simulations 2,8,32`, `--ablate ...`), over `--seeds K` evaluation seeds and one or more
//! models (`--model` repeated: training seeds). Answers are greedy; at evaluation the planner
//! sees only the model, never the verifier or the reference answer, which judge the completion
//! afterwards. The first variant is the baseline each other one is tested against, paired on
//! the same problems. Prints a Markdown table (or `--json`); `--out report.md` also writes
//! `report.json` and the chart `report.png` beside it.
//!
//! Latency fairness: the variants run interleaved, problem by problem (every variant answers
//! problem i before any answers i + 1), so a machine whose speed drifts slows them alike; and
//! generation runs on a pool of its own, `--threads` (default: the cores the planner thread does
//! not take), the same for every variant, so an async planner does not share a core with it.

mod report;
mod variants;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use crsm::data::Tokenizer;
use crsm::generate::SamplingConfig;
use crsm::generate::deliberate::DeliberateSession;
use crsm::latent::CrsmCheckpoint;
use crsm::planner::delta_buffer::Counts;
use crsm::planner::latent_model::LatentModel;
use crsm::tasks::stats::bootstrap_mean_interval;
use crsm::tasks::{Problem, answer::answer, read_problems};
use indicatif::{ProgressBar, ProgressStyle};

use crate::deliberate_args::{ModeArg, PlannerKnobs};
use crate::device_arg::DeviceArg;
use variants::{Ablation, Variant, grid};

pub use report::{Report, RunInfo};

#[derive(Args)]
pub struct EvalArgs {
    /// An assembled CRSM folder (`crsm-train assemble` / `full`); repeat for several training
    /// seeds, whose problems' scores are then averaged.
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// Problems as JSON Lines {"family", "prompt", "answer", "meta"} (`crsm-train tasks make`).
    #[arg(long)]
    tasks: PathBuf,
    /// Modes, comma-separated; the first variant is the baseline of the paired tests.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "off")]
    deliberate: Vec<ModeArg>,
    /// Lags of async variants, comma-separated (sync has none).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    lag: Vec<u64>,
    /// Simulations per search, comma-separated (default: the model's mcts_simulations, else 16).
    #[arg(long, value_delimiter = ',')]
    simulations: Vec<usize>,
    /// Ablations of the deliberating variants, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "none")]
    ablate: Vec<Ablation>,
    /// Evaluation seeds (the planner's root noise) per model and variant.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Only the first N problems.
    #[arg(long)]
    limit: Option<usize>,
    /// The longest answer, in tokens.
    #[arg(long, default_value_t = 64)]
    max_answer_tokens: usize,
    #[command(flatten)]
    knobs: PlannerKnobs,
    #[command(flatten)]
    device: DeviceArg,
    /// Print the report as JSON instead of the Markdown table.
    #[arg(long)]
    json: bool,
    /// Write the Markdown report here, with report.json and report.png beside it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Generation's thread pool, every variant alike (default: the available cores less
    /// --planner-threads, at least 1).
    #[arg(long)]
    threads: Option<usize>,
}

/// What one variant did on one model, seed by seed.
#[derive(Default)]
pub struct ModelRun {
    /// [seed][problem]
    pub hits: Vec<Vec<bool>>,
    pub token_ms: Vec<f64>,
    pub tokens: usize,
    pub answers: usize,
    pub plans: Counts,
    pub guided: u64,
}

/// One variant's runs, model by model.
pub struct VariantRun {
    pub name: String,
    pub models: Vec<ModelRun>,
}

/// This run's command line, as a person would type it again (`crsm-train` for the program,
/// single quotes around words the shell would split or expand): a report names what made it.
pub fn command_line() -> String {
    let plain = |a: &str| {
        !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c))
    };
    let mut words = vec!["crsm-train".to_string()];
    words.extend(std::env::args().skip(1).map(|a| {
        if plain(&a) {
            a
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    }));
    words.join(" ")
}

/// A share with its 95% bootstrap interval over the items, as a table cell: "46.1% (42.9-49.3)".
pub fn share_cell(xs: &[f64]) -> String {
    let (m, lo, hi) = bootstrap_mean_interval(xs, 10_000, 0);
    format!("{:.1}% ({:.1}-{:.1})", 100.0 * m, 100.0 * lo, 100.0 * hi)
}

/// An assembled CRSM folder: the whole latent model and the tokenizer beside it.
pub fn load_crsm(dir: &Path, device: &crsm::Device) -> Result<(Arc<LatentModel>, Tokenizer)> {
    let checkpoint =
        CrsmCheckpoint::load(dir, device).with_context(|| format!("loading {}", dir.display()))?;
    let model = LatentModel::from_checkpoint(checkpoint)
        .with_context(|| format!("{}: not a whole CRSM", dir.display()))?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = Tokenizer::from_file(&tok_path)
        .with_context(|| format!("{}: the model's text", tok_path.display()))?;
    Ok((model, tokenizer))
}

/// The problems of `file` (the first `limit` of them), refusing a file with none.
pub fn first_problems(file: &Path, limit: Option<usize>) -> Result<Vec<Problem>> {
    let mut problems = read_problems(file)?;
    if let Some(n) = limit {
        problems.truncate(n);
    }
    if problems.is_empty() {
        bail!("{}: no problems", file.display());
    }
    Ok(problems)
}

pub fn run(args: EvalArgs) -> Result<()> {
    if args.seeds == 0 || args.lag.is_empty() || args.deliberate.is_empty() {
        bail!("--seeds, --lag and --deliberate need at least one value");
    }
    let problems = first_problems(&args.tasks, args.limit)?;
    let device = args.device.open()?;
    let variants = grid(&args.deliberate, &args.lag, &args.simulations, &args.ablate);
    let models = (args.model.iter())
        .map(|dir| load_crsm(dir, &device))
        .collect::<Result<Vec<_>>>()?;
    let total = variants.len() * models.len() * args.seeds as usize * problems.len();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "eval [{bar:30}] {pos}/{len} answers, {per_sec}, {msg}, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let threads = args.threads.map(|t| t.max(1)).unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.saturating_sub(args.knobs.planner_threads).max(1)
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("crsm-generate-{i}"))
        .build()
        .context("eval: generation's thread pool")?;
    let started = Instant::now();
    let names = variants
        .iter()
        .map(|v| {
            let extra = &models[0].0.backbone.config.hf_extra;
            let simulations = v.resolve(&args.knobs, extra, 0)?.planner.search.simulations;
            Ok(v.name(simulations))
        })
        .collect::<Result<Vec<_>>>()?;
    // [model][variant]
    let mut per_model = Vec::new();
    for ((model, tokenizer), dir) in models.iter().zip(&args.model) {
        bar.set_message(dir.display().to_string());
        per_model
            .push(pool.install(|| run_model(&variants, &args, model, tokenizer, &problems, &bar))?);
    }
    let runs: Vec<VariantRun> = names
        .into_iter()
        .enumerate()
        .map(|(v, name)| VariantRun {
            name,
            models: per_model
                .iter_mut()
                .map(|m| std::mem::take(&mut m[v]))
                .collect(),
        })
        .collect();
    bar.finish_and_clear();
    let info = RunInfo {
        command: command_line(),
        tasks: args.tasks.display().to_string(),
        models: args.model.iter().map(|m| m.display().to_string()).collect(),
        problems: problems.len(),
        seeds: args.seeds,
        generation_threads: threads,
        planner_threads: args.knobs.planner_threads,
        minutes: started.elapsed().as_secs_f64() / 60.0,
    };
    let report = Report::new(info, &runs);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    if let Some(out) = &args.out {
        report.write(out)?;
        eprintln!("eval: report -> {} (+ .json, .png)", out.display());
    }
    Ok(())
}

/// Every variant on one model: seed by seed, problem by problem, every variant on the problem
/// before the next one, each answer in a fresh session. Returns one run per variant.
fn run_model(
    variants: &[Variant],
    args: &EvalArgs,
    model: &Arc<LatentModel>,
    tokenizer: &Tokenizer,
    problems: &[Problem],
    bar: &ProgressBar,
) -> Result<Vec<ModelRun>> {
    let _off = crsm::no_grad();
    let mut runs: Vec<ModelRun> = variants.iter().map(|_| ModelRun::default()).collect();
    let extra = &model.backbone.config.hf_extra;
    for seed in 0..args.seeds {
        let resolved = variants
            .iter()
            .map(|v| v.resolve(&args.knobs, extra, seed))
            .collect::<Result<Vec<_>>>()?;
        for run in &mut runs {
            run.hits.push(Vec::with_capacity(problems.len()));
        }
        for (i, problem) in problems.iter().enumerate() {
            for (d, run) in resolved.iter().zip(&mut runs) {
                let mut session = DeliberateSession::new(
                    model.clone(),
                    d.mode,
                    d.steering.clone(),
                    d.planner.clone(),
                    d.threads,
                    (seed << 32) | i as u64,
                )?;
                let a = answer(
                    &mut session,
                    tokenizer,
                    problem,
                    args.max_answer_tokens,
                    SamplingConfig::greedy(),
                )?;
                let stats = session.finish()?;
                run.plans += stats.plans;
                run.guided += stats.guided;
                run.tokens += a.ids.len();
                run.answers += 1;
                run.token_ms.extend(&a.token_ms);
                run.hits.last_mut().expect("pushed above").push(a.correct);
                bar.inc(1);
            }
        }
    }
    Ok(runs)
}
