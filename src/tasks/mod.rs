//! Reasoning task families for the evidence study: seeded generators, verifiers, and the JSON
//! Lines problem format `{"family", "prompt", "answer", "meta"}` (`problem.rs`). A verifier judges
//! a completion against the problem itself (any valid path or expression counts), so it never
//! needs the reference answer; the planner never sees either.
//!
//! - `pathstar`: path-star graphs (Bachmann & Nagarajan 2024);
//! - `countdown`: reach a target from 4 numbers with + - * /;
//! - `answer`: a model answering a problem, judged by the verifier;
//! - `make`: n distinct problems from a seed, disjoint from an excluded split;
//! - `stats`: the bootstrap interval and the exact McNemar test the study reports.

pub mod answer;
pub mod countdown;
pub mod make;
pub mod pathstar;
pub mod problem;
pub mod stats;

pub use make::make;
pub use problem::{Problem, read_problems, verify, write_problems};
