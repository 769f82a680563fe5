//! The CRSM's latent model: what the planner searches over. Per block application i the latent
//! `z_i` is the residual stream after that block at the current token (docs/ARCHITECTURE.md,
//! "The latent"), so the backbone's own head turns any latent, real or predicted, into a policy.
//!
//! - `trace`: latents of the frozen backbone over token windows (the training data of the rest);
//!   `trace_shards`: the same on disk, collected resumably in parts;
//! - `standardize`: per-layer, per-channel mean and spread, so every layer's latent is on one scale;
//! - `dynamics`: the GRU that predicts the next latent from the current one and a token;
//! - `linear_baseline`: least squares on the same inputs, the baseline the GRU must beat;
//! - `fit`: R^2 of predicted changes and cosines, the held-out report;
//! - `critic`, `value_target`, `correlation`: one value head per layer, what it learns, how it is
//!   judged;
//! - `broadcaster`, `broadcast_fit`: from a target latent back to a target SSM state (what
//!   injection writes), and its held-out report;
//! - `state_pairs`: counterfactual (real, other-token) steps with their SSM states, what the
//!   delta broadcaster learns from.
//! - `gates`: each layer's injection fraction from the critic's confidence;
//! - `checkpoint`: the assembled folder (backbone + every trained part), loaded strictly.
//!
//! Imports run down only: this module reads `model`, `ops` and `tensor`; `train` and the planner
//! read it.

pub mod backbone_head;
pub mod broadcast_fit;
pub mod broadcaster;
pub mod checkpoint;
pub mod correlation;
pub mod critic;
pub mod dynamics;
pub mod fit;
pub mod gates;
pub mod linear_baseline;
pub mod standardize;
pub mod state_pairs;
pub mod trace;
pub mod trace_shards;
pub mod value_target;

pub use backbone_head::BackboneHead;
pub use broadcaster::{Broadcaster, BroadcasterConfig};
pub use checkpoint::{CRSM_FILE, CriticPart, CrsmCheckpoint, Stage};
pub use critic::{Critic, CriticConfig, ValueHead, confidence};
pub use dynamics::{Dynamics, DynamicsConfig, TokenInputs};
pub use fit::{FitReport, Identity, LatentPredictor, OpenLoopFit, PolicyHead};
pub use gates::Gates;
pub use linear_baseline::LinearBaseline;
pub use standardize::Standardizer;
pub use trace::LatentTrace;
