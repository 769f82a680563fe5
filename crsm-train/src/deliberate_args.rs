//! `generate`'s deliberation flags: the mode, the search, how plans steer generation, the trace.
//! Unset flags take the model's `config.json` (`mcts_simulations`, `mcts_depth`,
//! `injection_rate`, `autonomy_threshold`, as the prototype named them), then the defaults here.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use crsm::generate::autonomy::Autonomy;
use crsm::generate::deliberate::{Mode, Steering};
use crsm::planner::config::SearchConfig;
use crsm::planner::delta_buffer::BufferConfig;
use crsm::planner::leaf_evaluator::LeafValue;
use crsm::planner::planning::{DynamicsMode, PlannerConfig};
use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Off,
    Async,
    Sync,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DynamicsArg {
    Learned,
    Exact,
    // The latent never moves (the ablation of the learned dynamics). A plain comment: a doc
    // comment here would make clap describe every value and switch the help's layout.
    Identity,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LeafValueArg {
    Critic,
    Rollout,
    Mixed,
}

#[derive(Args, Clone, Debug)]
pub struct DeliberateArgs {
    /// off: the backbone alone; async: the planner beside generation, never waited for; sync:
    /// search before every token (the upper bound async is measured against).
    #[arg(long, value_enum, default_value = "off")]
    pub deliberate: ModeArg,
    /// A plan from the state after token t is for token t + lag + 1.
    #[arg(long, default_value_t = 1)]
    pub lag: u64,
    /// Simulations per search (default: config.json's mcts_simulations, else 16).
    #[arg(long)]
    pub simulations: Option<usize>,
    #[command(flatten)]
    pub knobs: PlannerKnobs,
    /// Write the deliberation trace (JSON Lines, docs/TRACE.md).
    #[arg(long)]
    pub trace: Option<PathBuf>,
}

impl DeliberateArgs {
    /// Resolves the flags against the model's config.json keys (`extra`).
    pub fn resolve(&self, extra: &BTreeMap<String, Value>, seed: u64) -> Result<Deliberation> {
        self.knobs.resolve(
            self.deliberate.mode(),
            self.lag,
            self.simulations,
            extra,
            seed,
        )
    }

    /// The settings as the trace header records them.
    pub fn settings(&self, d: &Deliberation) -> Value {
        self.knobs.settings(d)
    }
}

impl ModeArg {
    pub fn mode(self) -> Mode {
        match self {
            ModeArg::Off => Mode::Off,
            ModeArg::Async => Mode::Async,
            ModeArg::Sync => Mode::Sync,
        }
    }
}

/// The search and steering flags besides the mode, the lag and the budget (which `eval` takes
/// as lists, to run a grid of variants).
#[derive(Args, Clone, Debug)]
pub struct PlannerKnobs {
    /// Search depth limit (default: config.json's mcts_depth, else 8).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Actions per node: the policy's top-k tokens (`--top-k` is the sampler's).
    #[arg(long, default_value_t = 8)]
    pub plan_top_k: usize,
    /// Gumbel root selection with sequential halving (the default for small budgets).
    #[arg(long, conflicts_with = "puct")]
    pub gumbel: bool,
    /// PUCT selection at the root too.
    #[arg(long)]
    pub puct: bool,
    /// Leaves per wave, evaluated in one batch.
    #[arg(long, default_value_t = 8)]
    pub wave: usize,
    /// a_i = rate * sigmoid(gate_i(confidence_i)); 0 turns injection off (default: config.json's
    /// injection_rate, else 0.1).
    #[arg(long)]
    pub injection_rate: Option<f32>,
    /// beta: the plan's tokens reweighted by (pi_plan / prior)^beta, the rest untouched; 0 turns
    /// guidance off.
    #[arg(long, default_value_t = 0.5)]
    pub guidance: f32,
    #[arg(long, value_enum, default_value = "learned")]
    pub dynamics: DynamicsArg,
    #[arg(long, value_enum, default_value = "critic")]
    pub leaf_value: LeafValueArg,
    /// Rollout length for --leaf-value rollout|mixed.
    #[arg(long, default_value_t = 8)]
    pub rollout_depth: usize,
    /// Late plans: alphas scaled by decay^(steps late), dropped past max_lag.
    #[arg(long, default_value_t = 4)]
    pub max_lag: u64,
    #[arg(long, default_value_t = 0.5)]
    pub decay: f32,
    /// The planner thread's own pool (async).
    #[arg(long, default_value_t = 1)]
    pub planner_threads: usize,
    /// Rewind (up to 4 tokens, at most twice) and resample under guidance when the critic's
    /// value stays below the threshold for 3 steps; the text is then printed at the end.
    #[arg(long)]
    pub autonomy: bool,
    /// The critic value (nats per token) that counts as low (default: config.json's
    /// autonomy_threshold, else -4).
    #[arg(long)]
    pub autonomy_threshold: Option<f32>,
}

/// What the flags and the model's config say.
pub struct Deliberation {
    pub mode: Mode,
    pub steering: Steering,
    pub planner: PlannerConfig,
    pub threads: usize,
}

impl PlannerKnobs {
    /// Resolves the flags, with this mode, lag and budget, against the model's config.json keys
    /// (`extra`).
    pub fn resolve(
        &self,
        mode: Mode,
        lag: u64,
        simulations: Option<usize>,
        extra: &BTreeMap<String, Value>,
        seed: u64,
    ) -> Result<Deliberation> {
        let from = |key: &str| extra.get(key).and_then(Value::as_f64);
        let simulations = simulations
            .or(from("mcts_simulations").map(|v| v as usize))
            .unwrap_or(16);
        let mut search = SearchConfig::for_budget(simulations, self.plan_top_k);
        if let Some(d) = self.depth.or(from("mcts_depth").map(|v| v as usize)) {
            search.max_depth = d;
        }
        if self.gumbel {
            search.gumbel = true;
        }
        if self.puct {
            search.gumbel = false;
        }
        search.wave = self.wave;
        search.seed = seed as u32;
        search.validate()?;
        let leaf_value = match self.leaf_value {
            LeafValueArg::Critic => LeafValue::Critic,
            LeafValueArg::Rollout => LeafValue::Rollout {
                depth: self.rollout_depth,
            },
            LeafValueArg::Mixed => LeafValue::Mixed {
                depth: self.rollout_depth,
            },
        };
        let injection_rate = self
            .injection_rate
            .or(from("injection_rate").map(|v| v as f32))
            .unwrap_or(0.1);
        if !(0.0..=1.0).contains(&injection_rate) || !(0.0..=1.0).contains(&self.guidance) {
            bail!(
                "--injection-rate {injection_rate} and --guidance {} must lie in [0, 1]",
                self.guidance
            );
        }
        Ok(Deliberation {
            mode,
            steering: Steering {
                injection_rate,
                guidance: self.guidance,
                buffer: BufferConfig {
                    max_lag: self.max_lag,
                    decay: self.decay,
                },
                autonomy: self.autonomy.then(|| Autonomy {
                    threshold: self
                        .autonomy_threshold
                        .or(from("autonomy_threshold").map(|v| v as f32))
                        .unwrap_or(Autonomy::default().threshold),
                    ..Autonomy::default()
                }),
                ..Steering::default()
            },
            planner: PlannerConfig {
                dynamics: match self.dynamics {
                    DynamicsArg::Learned => DynamicsMode::Learned,
                    DynamicsArg::Exact => DynamicsMode::Exact,
                    DynamicsArg::Identity => DynamicsMode::Identity,
                },
                search,
                lag,
                leaf_value,
                trace_nodes: 64,
            },
            threads: self.planner_threads,
        })
    }

    /// The settings as the trace header records them.
    pub fn settings(&self, d: &Deliberation) -> Value {
        serde_json::json!({
            "lag": d.planner.lag,
            "simulations": d.planner.search.simulations,
            "depth": d.planner.search.max_depth,
            "top_k": d.planner.search.top_k,
            "gumbel": d.planner.search.gumbel,
            "wave": d.planner.search.wave,
            "injection_rate": d.steering.injection_rate,
            "guidance": d.steering.guidance,
            "leaf_value": format!("{:?}", d.planner.leaf_value),
            "max_lag": d.steering.buffer.max_lag,
            "decay": d.steering.buffer.decay,
            "planner_threads": d.threads,
        })
    }
}
