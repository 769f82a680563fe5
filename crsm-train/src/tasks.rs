//! `crsm-train tasks make|check`: the evidence study's problem files. `make` writes n distinct
//! problems of a family (JSON Lines `{"family", "prompt", "answer", "meta"}`), never repeating a
//! prompt of `--exclude` files; `check` runs each problem's verifier on its own answer.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use crsm::tasks::{make, read_problems, verify, write_problems};

#[derive(Args)]
pub struct TasksArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(Subcommand)]
enum Which {
    /// Generate problems: --family pathstar|countdown --n N --seed S [--param k=v ...] --out FILE.
    Make(MakeArgs),
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
    /// Generator parameters: pathstar d, l, n (2, 5, 50); countdown max_number, max_target (25, 500).
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Problem files whose prompts must not appear (e.g. the training split).
    #[arg(long)]
    exclude: Vec<PathBuf>,
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
        Which::Check { file } => {
            let problems = read_problems(&file)?;
            let mut wrong = Vec::new();
            for (i, p) in problems.iter().enumerate() {
                if !verify(p, &p.answer)? {
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
