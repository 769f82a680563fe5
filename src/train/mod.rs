//! Training: the run configuration, the objective, AdamW, the learning-rate schedule, the loop
//! with its checkpoints and metrics, and the memory of one step (`memtest`).

mod adamw;
pub mod assemble;
pub mod assemble_config;
pub mod broadcaster_task;
pub mod checkpoint;
mod config;
pub mod critic_config;
pub mod critic_stage;
pub mod critic_task;
pub mod distill;
pub mod distill_config;
pub mod drift;
pub mod dynamics_task;
pub mod lm_task;
pub mod loss_scale;
pub mod memtest;
pub mod metrics;
mod objective;
mod part_stream;
pub mod random_step;
pub mod rotation;
pub mod run_dir;
pub mod run_size;
mod schedule;
pub mod stage_loop;
pub mod stage_manifest;
pub mod stage_source;
pub mod task;
pub mod task_data;
pub mod task_rewards;
pub mod task_weights;
pub mod tasks_config;
mod trainer;

pub use adamw::{AdamW, AdamWConfig};
pub use config::{Precision, RunConfig, TrainingConfig};
pub use distill_config::DistillConfig;
pub use objective::causal_lm_loss;
pub use run_dir::remove_run;
pub use schedule::LrSchedule;
pub use task::{Task, TaskEval};
pub use trainer::{
    MAX_CONSECUTIVE_SKIPS, METRICS_FILE, Silent, Start, StepOutcome, TrainObserver, Trainer,
};
