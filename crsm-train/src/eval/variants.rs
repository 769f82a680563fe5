//! The variants an `eval` run compares: the grid of modes x lags x budgets x ablations, `off`
//! once (nothing of the planner applies to it), `sync` once per budget and ablation (it searches
//! from the state it steers: no lag), and what each ablation changes.

use anyhow::Result;
use clap::ValueEnum;
use crsm::generate::deliberate::Mode;
use crsm::planner::leaf_evaluator::LeafValue;
use crsm::planner::planning::DynamicsMode;
use serde_json::Value;
use std::collections::BTreeMap;

use crate::deliberate_args::{Deliberation, ModeArg, PlannerKnobs};

/// What one ablation takes away from the full system (injection and guidance, the learned
/// dynamics, critic leaf values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Ablation {
    None,
    /// Guidance only: plans steer the choice of token but never the state.
    NoInjection,
    /// Injection only: plans steer the state but never the choice of token.
    NoGuidance,
    /// Leaves valued by rollouts along the dynamics instead of the critic.
    NoCritic,
    /// Children keep their parent's latent: the search cannot see consequences.
    IdentityDynamics,
    /// The real backbone step per leaf instead of the learned dynamics.
    ExactDynamics,
}

impl Ablation {
    pub fn name(self) -> &'static str {
        match self {
            Ablation::None => "none",
            Ablation::NoInjection => "no-injection",
            Ablation::NoGuidance => "no-guidance",
            Ablation::NoCritic => "no-critic",
            Ablation::IdentityDynamics => "identity-dynamics",
            Ablation::ExactDynamics => "exact-dynamics",
        }
    }

    fn apply(self, d: &mut Deliberation, rollout_depth: usize) {
        match self {
            Ablation::None => {}
            Ablation::NoInjection => d.steering.injection_rate = 0.0,
            Ablation::NoGuidance => d.steering.guidance = 0.0,
            Ablation::NoCritic => {
                d.planner.leaf_value = LeafValue::Rollout {
                    depth: rollout_depth,
                }
            }
            Ablation::IdentityDynamics => d.planner.dynamics = DynamicsMode::Identity,
            Ablation::ExactDynamics => d.planner.dynamics = DynamicsMode::Exact,
        }
    }
}

/// One column of the comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub mode: ModeArg,
    pub lag: u64,
    pub simulations: Option<usize>,
    pub ablation: Ablation,
}

impl Variant {
    /// `off`, or e.g. `async lag 2, 8 sims, no-critic` (the budget as resolved).
    pub fn name(&self, resolved_simulations: usize) -> String {
        let mode = self.mode.mode();
        if mode == Mode::Off {
            return "off".into();
        }
        let mut name = match mode {
            // Sync searches from the state it steers: it has no lag.
            Mode::Sync => format!("sync, {resolved_simulations} sims"),
            _ => format!(
                "{} lag {}, {resolved_simulations} sims",
                mode.name(),
                self.lag
            ),
        };
        if self.ablation != Ablation::None {
            name.push_str(&format!(", {}", self.ablation.name()));
        }
        name
    }

    /// The deliberation this variant runs with, for evaluation seed `seed`.
    pub fn resolve(
        &self,
        knobs: &PlannerKnobs,
        extra: &BTreeMap<String, Value>,
        seed: u64,
    ) -> Result<Deliberation> {
        let mut d = knobs.resolve(self.mode.mode(), self.lag, self.simulations, extra, seed)?;
        self.ablation.apply(&mut d, knobs.rollout_depth);
        Ok(d)
    }
}

/// The grid, in the order given (`off` once, where it first appears).
pub fn grid(
    modes: &[ModeArg],
    lags: &[u64],
    simulations: &[usize],
    ablations: &[Ablation],
) -> Vec<Variant> {
    let sims: Vec<Option<usize>> = if simulations.is_empty() {
        vec![None]
    } else {
        simulations.iter().map(|&s| Some(s)).collect()
    };
    let mut out = Vec::new();
    for &mode in modes {
        if mode.mode() == Mode::Off {
            let off = Variant {
                mode,
                lag: lags[0],
                simulations: sims[0],
                ablation: Ablation::None,
            };
            if !out.iter().any(|v: &Variant| v.mode.mode() == Mode::Off) {
                out.push(off);
            }
            continue;
        }
        let lags = if mode.mode() == Mode::Sync {
            &lags[..1]
        } else {
            lags
        };
        for &lag in lags {
            for &s in &sims {
                for &ablation in ablations {
                    out.push(Variant {
                        mode,
                        lag,
                        simulations: s,
                        ablation,
                    });
                }
            }
        }
    }
    out
}
