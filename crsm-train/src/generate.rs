//! `crsm-train generate`: text (or ids) from a prompt, streamed to stdout as it comes, or one JSON
//! line with `--json`. The model runs its recurrent step: O(1) per token. With `--deliberate
//! async|sync` the planner steers it (an assembled CRSM folder: `crsm-train assemble`), and
//! `--trace` writes what it did.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use crsm::data::Tokenizer;
use crsm::generate::deliberate::{DeliberateSession, Mode};
use crsm::generate::{GenerateOptions, NextToken, SamplingConfig, Session, generate};
use crsm::latent::CrsmCheckpoint;
use crsm::model::Backbone;
use crsm::planner::latent_model::LatentModel;
use crsm::trace::{Header, SCHEMA, TraceWriter, VERSION};

use crate::deliberate_args::DeliberateArgs;
use crate::device_arg::DeviceArg;

#[derive(Args)]
pub struct GenerateArgs {
    /// HF-style model folder: config.json + model.safetensors (+ tokenizer.json for text).
    #[arg(long)]
    model: PathBuf,
    /// Prompt text (needs DIR/tokenizer.json, else bytes are the tokens).
    #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
    prompt: Option<String>,
    /// Prompt as comma-separated token ids (no tokenizer needed).
    #[arg(long, value_delimiter = ',')]
    ids: Option<Vec<u32>>,
    /// How many tokens to generate at most.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Always take the most likely token (the default when no sampling flag is given).
    #[arg(long, conflicts_with_all = ["temperature", "top_k", "top_p"])]
    greedy: bool,
    /// Sampling temperature (> 0 samples; 0 = greedy).
    #[arg(long)]
    temperature: Option<f32>,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long)]
    top_k: Option<usize>,
    /// Nucleus sampling: keep the most likely tokens up to this probability (1 = off).
    #[arg(long)]
    top_p: Option<f32>,
    /// Penalise tokens already seen (1 = off; HF's rule).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Seed for sampling: the same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop when the text contains this (may repeat).
    #[arg(long)]
    stop: Vec<String>,
    #[command(flatten)]
    device: DeviceArg,
    /// Print one JSON line {"prompt_ids", "ids", "text"} instead of streaming.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    deliberation: DeliberateArgs,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let device = args.device.open()?;
    let backbone = Backbone::load(&args.model, &device)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let tok_path = args.model.join("tokenizer.json");
    let has_tokenizer_json = tok_path.exists();
    // Text prompts without a tokenizer.json fall back to bytes as tokens; ids never need one.
    let text_tokenizer = if has_tokenizer_json {
        Some(Tokenizer::from_file(&tok_path)?)
    } else if args.prompt.is_some() {
        eprintln!(
            "note: {} has no tokenizer.json; the prompt's UTF-8 bytes are used as token ids",
            args.model.display()
        );
        Some(Tokenizer::byte_level())
    } else {
        None
    };
    let prompt_ids = match (&args.prompt, &args.ids) {
        (Some(p), _) => text_tokenizer.as_ref().context("a tokenizer")?.encode(p)?,
        (None, Some(ids)) => ids.clone(),
        (None, None) => bail!("give --prompt or --ids"),
    };
    let sampling_flags = args.temperature.is_some() || args.top_k.is_some() || args.top_p.is_some();
    let sampling = if args.greedy || !sampling_flags {
        SamplingConfig {
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
            ..SamplingConfig::greedy()
        }
    } else {
        SamplingConfig {
            temperature: args.temperature.unwrap_or(1.0),
            top_k: args.top_k.unwrap_or(0),
            top_p: args.top_p.unwrap_or(1.0),
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
        }
    };
    let opts = GenerateOptions {
        max_new_tokens: args.max_new_tokens,
        sampling,
        stop_on_eos: text_tokenizer.as_ref().and_then(|t| t.eos_id()),
        stop_strings: args.stop.clone(),
    };
    // HF Mamba checkpoints pad the vocabulary (GPT-NeoX: 50277 ids to 50280); never sample an id
    // the tokenizer cannot decode.
    let limit = text_tokenizer
        .as_ref()
        .map_or(usize::MAX, |t| t.vocab_size());
    let plan_settings = args
        .deliberation
        .resolve(&backbone.config.hf_extra, args.seed)?;
    let mut plain = None;
    let mut deliberating = None;
    if plan_settings.mode == Mode::Off {
        plain = Some(Session::new(&backbone)?);
    } else {
        let checkpoint = CrsmCheckpoint::load(&args.model, &device)
            .with_context(|| format!("loading {}", args.model.display()))?;
        let model = LatentModel::from_checkpoint(checkpoint)?;
        // Any id unique to this call: plans of another generation are rejected.
        let generation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut s = DeliberateSession::new(
            model,
            plan_settings.mode,
            plan_settings.steering.clone(),
            plan_settings.planner.clone(),
            plan_settings.threads,
            generation,
        )?;
        if let Some(path) = &args.deliberation.trace {
            let header = Header {
                schema: SCHEMA.into(),
                version: VERSION,
                model: args.model.display().to_string(),
                mode: plan_settings.mode.name().into(),
                settings: args.deliberation.settings(&plan_settings),
                prompt_ids: prompt_ids.clone(),
                prompt: args.prompt.clone().unwrap_or_default(),
            };
            // The session's own copy, for the token texts of the trace.
            let texts = if has_tokenizer_json {
                Some(Tokenizer::from_file(&tok_path)?)
            } else {
                None
            };
            s = s.with_trace(TraceWriter::create(path, header)?, texts);
        }
        deliberating = Some(s);
    }
    let inner: &mut dyn NextToken = match (&mut plain, &mut deliberating) {
        (Some(p), _) => p,
        (None, Some(d)) => d,
        (None, None) => unreachable!("one of the two is set above"),
    };
    let mut session = Truncated { inner, limit };
    // With autonomy, tokens may be taken back: print the text at the end instead.
    let live = !args.json && plan_settings.steering.autonomy.is_none();
    let mut stream = text_tokenizer
        .as_ref()
        .filter(|_| live)
        .map(|t| t.stream_decoder_after(&prompt_ids));
    let mut stdout = std::io::stdout();
    let ids = generate(
        &mut session,
        &prompt_ids,
        &opts,
        text_tokenizer.as_ref(),
        |id| {
            if let Some(s) = stream.as_mut() {
                print!("{}", s.push(id)?);
                let _ = stdout.flush();
            } else if live {
                print!("{id} ");
                let _ = stdout.flush();
            }
            Ok(())
        },
    )?;
    if let Some(s) = stream.as_mut() {
        println!("{}", s.finish()?);
    } else if live {
        println!();
    } else if !args.json {
        match &text_tokenizer {
            Some(t) => println!("{}", t.decode(&ids)?),
            None => println!("{ids:?}"),
        }
    }
    if let Some(d) = &mut deliberating {
        let stats = d.finish()?;
        let p = stats.plans;
        eprintln!(
            "deliberation ({}): {} tokens, {} snapshots, plans received {} / applied {} / late {} / dropped {} / diverged {} / rejected {}, guided {}, rewinds {}",
            plan_settings.mode.name(),
            stats.steps,
            stats.snapshots,
            p.received,
            p.applied,
            p.decayed,
            p.dropped,
            p.diverged,
            p.rejected,
            stats.guided,
            stats.rewinds
        );
    }
    if args.json {
        // text is null when ids were given and the folder has no tokenizer.json.
        let text = match &text_tokenizer {
            Some(t) => Some(t.decode(&ids)?),
            None => None,
        };
        println!(
            "{}",
            serde_json::json!({ "prompt_ids": prompt_ids, "ids": ids, "text": text })
        );
    }
    Ok(())
}

/// A model whose logits rows are cut to the first `limit` ids.
struct Truncated<M> {
    inner: M,
    limit: usize,
}

impl<M: NextToken + ?Sized> NextToken for Truncated<&mut M> {
    fn prefill(&mut self, prompt: &[u32]) -> crsm::Result<Vec<f32>> {
        let mut row = self.inner.prefill(prompt)?;
        row.truncate(self.limit);
        Ok(row)
    }
    fn step(&mut self, id: u32) -> crsm::Result<Vec<f32>> {
        let mut row = self.inner.step(id)?;
        row.truncate(self.limit);
        Ok(row)
    }
    fn chosen(&mut self, id: u32) -> crsm::Result<()> {
        self.inner.chosen(id)
    }
    fn take_rewind(&mut self) -> Option<usize> {
        self.inner.take_rewind()
    }
}
