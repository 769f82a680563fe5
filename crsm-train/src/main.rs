//! `crsm-train`: the command-line program of crsm: `info` (devices and a self-check), `logits` and
//! `generate` on any HF-style Mamba folder, `bench`, `tokenizer` / `prepare` for training data,
//! `pretrain` / `sft`, the later stages `distill`, `assemble`, `critic`, all four as `full`, and
//! the default job, `quickstart` (`full` on the nano config).

mod allocator;
mod arms;
mod assemble;
mod bench;
mod critic;
mod critic_probe;
mod deliberate_args;
mod device_arg;
mod distill;
mod eval;
mod full;
mod generate;
mod info;
mod logits;
mod memtest;
mod plot;
mod prepare;
mod pretrain;
mod progress;
mod quickstart;
mod run_start_arg;
mod size_check;
mod tasks;
mod tokenizer_cmd;

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
    /// The default job: tokenizer and shards from the shipped Austen corpus, `full` on the nano
    /// config, then a generated paragraph; ends with `quickstart: held_out_bpb=<x> ... minutes=<m>`.
    Quickstart(quickstart::QuickstartArgs),
    /// Causal-LM pretraining from a run config on prepared shards (resumable).
    Pretrain(pretrain::PretrainArgs),
    /// Supervised fine-tuning from pretrained weights: loss on response tokens only.
    Sft(pretrain::SftArgs),
    /// Stage 2: latent traces of the stage-1 backbone, the dynamics trained on them, and its
    /// open-loop fit beside the identity and least-squares baselines.
    Distill(distill::DistillArgs),
    /// Stage 3: the backbone and every trained part in one checkpoint folder (assemble.out_dir).
    Assemble(assemble::AssembleArgs),
    /// Stage 4: one value head per layer on the distill stage's traces, and its held-out
    /// correlation and calibration.
    Critic(critic::CriticArgs),
    /// Stages 1-4 in order (pretrain, distill, assemble, critic), skipping those whose outputs
    /// match their inputs; ends with `full: held_out_bpb=X dynamics_r2_1=A ... minutes=M`.
    Full(full::FullArgs),
    /// Throughput: `bench train` (training tokens/s), `bench decode` (prefill and decode tokens/s).
    Bench(bench::BenchArgs),
    /// Train a byte-level BPE tokenizer on text/JSONL files and write tokenizer.json.
    Tokenizer(tokenizer_cmd::TokenizerArgs),
    /// Reasoning problems: `tasks make` (seeded generators) and `tasks check` (verifiers).
    Tasks(tasks::TasksArgs),
    /// Exact match of a CRSM on problems (JSON Lines) under a grid of deliberation modes and
    /// ablations, with bootstrap intervals, paired tests against the first and latencies.
    Eval(eval::EvalArgs),
    /// Path-star: which arm the model's own likelihood prefers, at the first node and over the
    /// whole answer (how much lookahead with the exact model could gain).
    Arms(arms::ArmsArgs),
    /// Whether the critic ranks a right answer above a wrong one to the same problem (sampled
    /// answers compared step by step), beside the policy's certainty alone.
    CriticProbe(critic_probe::CriticProbeArgs),
    /// Tokenize text/JSONL into memory-mapped train/val token shards.
    Prepare(prepare::PrepareArgs),
    /// Peak device memory of one training step of a run config, and whether it fits a budget.
    Memtest(memtest::MemtestArgs),
}

fn main() -> Result<()> {
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        Command::Info(args) => info::run(args),
        Command::Logits(args) => logits::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Quickstart(args) => quickstart::run(args),
        Command::Pretrain(args) => pretrain::run_pretrain(args),
        Command::Sft(args) => pretrain::run_sft(args),
        Command::Distill(args) => distill::run(args),
        Command::Assemble(args) => assemble::run(args),
        Command::Critic(args) => critic::run(args),
        Command::Full(args) => full::run(args),
        Command::Tokenizer(args) => tokenizer_cmd::run(args),
        Command::Tasks(args) => tasks::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Arms(args) => arms::run(args),
        Command::CriticProbe(args) => critic_probe::run(args),
        Command::Prepare(args) => prepare::run(args),
        Command::Memtest(args) => memtest::run(args),
    }
}
