//! Training: the run configuration, the objective, AdamW, the learning-rate schedule, the loop
//! with its checkpoints and metrics.

mod adamw;
pub mod checkpoint;
mod config;
pub mod metrics;
mod objective;
mod schedule;
mod trainer;

pub use adamw::{AdamW, AdamWConfig};
pub use config::{RunConfig, TrainingConfig};
pub use objective::{IGNORE, causal_lm_loss};
pub use schedule::LrSchedule;
pub use trainer::{
    MAX_CONSECUTIVE_SKIPS, METRICS_FILE, Silent, StepOutcome, TrainObserver, Trainer,
};
