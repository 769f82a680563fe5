//! Reasoning task families for the evidence study: seeded generators, verifiers, and the JSON
//! Lines problem format `{"family", "prompt", "answer", "meta"}` (`problem.rs`). The path-star and
//! countdown verifiers judge a completion against the prompt itself (any valid path or expression
//! counts), so they never need the reference answer; the arc verifier is an exact match with it.
//! The planner never sees either.
//!
//! - `pathstar`: path-star graphs (Bachmann & Nagarajan 2024);
//! - `countdown`: reach a target from 4 numbers with + - * /;
//! - `arc`: ARC-format grids: the format and verifier (`arc`), the grid and its transformations
//!   (`arc_grid`), the generator of transformations (`arc_gen`), the ARC-AGI-1 tasks (`arc_agi`);
//! - `answer`: a model answering a problem, judged by the verifier;
//! - `arm_likelihood`: which path-star arm the model's own likelihood prefers (what lookahead
//!   with the exact model could gain);
//! - `make`: n distinct problems from a seed, disjoint from an excluded split;
//! - `stats`: the bootstrap interval, the exact McNemar test and the paired permutation test.

pub mod answer;
pub mod arc;
pub mod arc_agi;
pub mod arc_gen;
pub mod arc_grid;
pub mod arm_likelihood;
pub mod countdown;
pub mod make;
pub mod pathstar;
pub mod problem;
pub mod stats;

pub use make::make;
pub use problem::{Problem, read_problems, verify, write_problems};
