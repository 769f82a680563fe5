//! The planner: System 2 beside the generator. It searches the latent space with MCTS
//! (MuZero-style: a learned model steps latents, a critic values them) and posts plans that
//! steer the backbone's state and choice (docs/ARCHITECTURE.md; DESIGN.md section 4).
//!
//! The search core, pure Rust and independent of any model:
//!
//! - `config`: `SearchConfig` and its defaults, the rule that picks Gumbel for small budgets;
//! - `evaluator`: the `LeafEvaluator` trait the model side implements (a batch of expansions in,
//!   latents, top-k tokens with logits and values out);
//! - `tree`: the tree in flat arrays, laid out as mctx's `Tree`; `minmax`: MuZero's MinMaxStats;
//! - `puct`: MuZero's PUCT selection; `gumbel` and `halving`: Gumbel MuZero's root (Gumbel-top-m,
//!   sequential halving), interior selection and completed-Q improved policy;
//! - `search`: the loop in waves of W leaves under virtual loss, one evaluator call per wave;
//! - `output`: the chosen action, the improved policy, the tree summary for traces.
//!
//! The model side and the exchange with generation:
//!
//! - `latent_model`: the assembled CRSM's parts the planner reads, and a node's evaluation (the
//!   head's top-k, the policy's certainty, the critic's values and confidences);
//! - `leaf_evaluator`: the `LeafEvaluator` on the learned model, with batched rollouts;
//!   `exact_evaluator`: the ablation that expands leaves with the real backbone step;
//! - `planning`: one plan from one snapshot (forward projection, search, packaging);
//! - `deliberation`: the planner thread with its own pool and one-slot mailbox;
//! - `plan`: the snapshot and plan types; `delta_buffer`: plans keyed by target step (on time,
//!   decayed, dropped, rejected); `injection`: the gated blend into the SSM states.
//!
//! All randomness comes from `rng::counter_gumbel(seed, stream, counter)`, a pure function, so a
//! wave and the one-leaf loop see the same numbers.
//!
//! Imports: the search core reads `rng` and `error` only; the model side reads `model`, `latent`,
//! `state`, `ops` and `trace`. Nothing here imports training or generation (generation imports
//! the planner).

pub mod config;
pub mod deliberation;
pub mod delta_buffer;
pub mod evaluator;
pub mod exact_evaluator;
pub mod gumbel;
pub mod halving;
pub mod injection;
pub mod latent_model;
pub mod leaf_evaluator;
pub mod math;
pub mod minmax;
pub mod output;
pub mod plan;
pub mod planning;
pub mod puct;
pub mod search;
pub mod tree;

pub use config::{SearchConfig, gumbel_by_default};
pub use evaluator::{Evaluation, Expansion, LeafEvaluator};
pub use minmax::MinMaxStats;
pub use output::{NodeSummary, SearchOutput};
pub use search::Search;
pub use tree::{NONE, ROOT, Tree};
