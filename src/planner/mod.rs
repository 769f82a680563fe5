//! The planner (System 2): the snapshot/plan exchange with generation, the targeted delta buffer
//! and gated injection.

pub mod delta_buffer;
pub mod injection;
pub mod latent_model;
pub mod plan;
