//! Training: the optimizer, the objectives; the trainer and its schedules arrive with the
//! training issue.

mod adamw;
mod objective;

pub use adamw::{AdamW, AdamWConfig};
pub use objective::{IGNORE, causal_lm_loss};
