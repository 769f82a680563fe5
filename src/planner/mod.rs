//! The planner: System 2 beside the generator. It searches the latent space with MCTS
//! (MuZero-style: a learned model steps latents, a critic values them) and posts plans that
//! steer the backbone's state and choice (docs/ARCHITECTURE.md; DESIGN.md section 4).
//!
//! What is here so far is the search core, pure Rust and independent of any model:
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
//! All randomness comes from `rng::counter_gumbel(seed, stream, counter)`, a pure function, so a
//! wave and the one-leaf loop see the same numbers.
//!
//! Imports: this part reads `rng` and `error` only. The planner's evaluator, when it comes,
//! reads `model` and `latent`; nothing here may import training or generation.

pub mod config;
pub mod evaluator;
pub mod gumbel;
pub mod halving;
pub mod math;
pub mod minmax;
pub mod output;
pub mod puct;
pub mod search;
pub mod tree;

pub use config::{SearchConfig, gumbel_by_default};
pub use evaluator::{Evaluation, Expansion, LeafEvaluator};
pub use minmax::MinMaxStats;
pub use output::{NodeSummary, SearchOutput};
pub use search::Search;
pub use tree::{NONE, ROOT, Tree};
