//! Training: the optimizer now; the trainer, schedules and tasks arrive with the training issue.

mod adamw;

pub use adamw::{AdamW, AdamWConfig};
