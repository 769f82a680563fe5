//! `crsm-train prepare`: text and JSONL to the memory-mapped token shards training reads
//! (`OUT/train.{bin,json}`, `OUT/val.{bin,json}`; format in `crsm::data` shards.rs). Prints one
//! summary line on stdout; skipped bad lines are listed on stderr.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use crsm::data::{BadLinePolicy, CorpusReport, ValSource, prepare};

#[derive(Args)]
pub struct PrepareArgs {
    /// A corpus file or directory (*.txt: one document each; *.jsonl: one document a line).
    #[arg(long)]
    input: PathBuf,
    /// tokenizer.json (e.g. from `crsm-train tokenizer`).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Keep the last F of the corpus's tokens (a cut in the token stream) for validation.
    #[arg(long, default_value_t = 0.05, conflicts_with = "val_file")]
    val_fraction: f64,
    /// Make the validation split from this file or directory instead.
    #[arg(long)]
    val_file: Option<PathBuf>,
    /// What to do with a JSONL line that is not a document.
    #[arg(long, value_enum, default_value_t = BadLines::Fail)]
    bad_lines: BadLines,
}

#[derive(Clone, Copy, ValueEnum)]
enum BadLines {
    /// Leave it out, list the first few on stderr.
    Skip,
    /// Stop with file:line and why.
    Fail,
}

pub fn run(args: PrepareArgs) -> Result<()> {
    let val = match &args.val_file {
        Some(file) => ValSource::File(file.clone()),
        None => ValSource::Fraction(args.val_fraction),
    };
    let policy = match args.bad_lines {
        BadLines::Skip => BadLinePolicy::Skip,
        BadLines::Fail => BadLinePolicy::Fail,
    };
    let s = prepare(&args.input, &args.tokenizer, &args.out, &val, policy)
        .map_err(|e| match e {
            // The flag that leaves bad lines out is this command's (the tokenizer has none).
            crsm::Error::Data { line: Some(_), .. } => {
                anyhow::anyhow!("{e}; --bad-lines skip leaves such lines out")
            }
            e => e.into(),
        })
        .with_context(|| format!("preparing {}", args.input.display()))?;
    let mut skipped = s.report.skipped_lines;
    report_skipped(&s.report);
    let mut documents = s.report.documents.to_string();
    if let Some(r) = &s.val_report {
        report_skipped(r);
        skipped += r.skipped_lines;
        documents = format!("{documents} + {} val", r.documents);
    }
    println!(
        "prepared {documents} documents: train {} tokens, val {} tokens, dtype {}, {skipped} bad lines skipped -> {}",
        s.train.count,
        s.val.count,
        s.train.dtype,
        args.out.display()
    );
    Ok(())
}

fn report_skipped(report: &CorpusReport) {
    for bad in &report.first_bad_lines {
        eprintln!("skipped {}:{}: {}", bad.file, bad.line, bad.reason);
    }
    let more = report.skipped_lines - report.first_bad_lines.len();
    if more > 0 {
        eprintln!("... and {more} more bad lines");
    }
}
