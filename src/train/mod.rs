//! Training: the run configuration, the objective, AdamW, the learning-rate schedule, the loop
//! with its checkpoints and metrics.

mod adamw;
mod config;
pub mod metrics;
mod objective;
mod schedule;

pub use adamw::{AdamW, AdamWConfig};
pub use config::{RunConfig, TrainingConfig};
pub use objective::{IGNORE, causal_lm_loss};
pub use schedule::LrSchedule;
