//! `crsm-train arms --model DIR --tasks FILE.jsonl`: on path-star problems, which arm the model's
//! own likelihood prefers, at the first node (what greedy decoding picks), over the graph's whole
//! paths, and by lookahead (each first node, then the model's greedy answer, compared by
//! likelihood: what a search reaching the end of every arm with the exact model would answer);
//! see `crsm::tasks::arm_likelihood`. One Markdown row per model, with 95% bootstrap intervals.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use crsm::data::Tokenizer;
use crsm::model::Backbone;
use crsm::tasks::arm_likelihood::arm_scores;
use indicatif::{ProgressBar, ProgressStyle};

use crate::device_arg::DeviceArg;
use crate::eval::{first_problems, share_cell};

#[derive(Args)]
pub struct ArmsArgs {
    /// A model folder (config.json, model.safetensors, tokenizer.json); repeat for several.
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// Path-star problems as JSON Lines (`crsm-train tasks make --family pathstar`).
    #[arg(long)]
    tasks: PathBuf,
    /// Only the first N problems.
    #[arg(long)]
    limit: Option<usize>,
    /// The longest continuation lookahead decodes after each first node, in tokens.
    #[arg(long, default_value_t = 64)]
    max_answer_tokens: usize,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(args: ArmsArgs) -> Result<()> {
    let problems = first_problems(&args.tasks, args.limit)?;
    let device = args.device.open()?;
    println!(
        "| model | problems | first node picks the goal's arm | whole path picks it | lookahead answers right | after a wrong first node: that arm, then the goal | mean log-prob gap, right path - best wrong (nats) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for dir in &args.model {
        let model =
            Backbone::load(dir, &device).with_context(|| format!("loading {}", dir.display()))?;
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path)
            .with_context(|| format!("{}: arms reads text", tok_path.display()))?;
        let bar = ProgressBar::new(problems.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {per_sec} eta {eta}")
                .expect("a valid template"),
        );
        bar.set_message(dir.display().to_string());
        let (mut first, mut path, mut ahead, mut gap) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut wrong_then_goal = Vec::new();
        for (i, p) in problems.iter().enumerate() {
            let s = arm_scores(&model, &tokenizer, &p.prompt, args.max_answer_tokens)
                .with_context(|| format!("{} line {}", args.tasks.display(), i + 1))?;
            first.push(f64::from(u8::from(s.first_node_right())));
            path.push(f64::from(u8::from(s.path_right())));
            ahead.push(f64::from(u8::from(s.lookahead_right())));
            wrong_then_goal.extend(
                (s.lookahead_arm_then_goal.iter().enumerate())
                    .filter(|&(i, _)| i != s.right)
                    .map(|(_, &b)| f64::from(u8::from(b))),
            );
            let best_wrong = (s.path.iter().enumerate())
                .filter(|&(i, _)| i != s.right)
                .map(|(_, &x)| x)
                .fold(f64::NEG_INFINITY, f64::max);
            gap.push(s.path[s.right] - best_wrong);
            bar.inc(1);
        }
        bar.finish_and_clear();
        let mean_gap = gap.iter().sum::<f64>() / gap.len() as f64;
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} |",
            dir.display(),
            problems.len(),
            share_cell(&first),
            share_cell(&path),
            share_cell(&ahead),
            share_cell(&wrong_then_goal),
            mean_gap
        );
    }
    Ok(())
}
