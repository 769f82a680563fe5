//! The model: `CrsmConfig` (an HF `config.json` plus optional `crsm_*` keys) and the `Backbone`
//! (HF `MambaForCausalLM` plus hierarchical policy fusion and recursive depth). The recurrent
//! state a running sequence carries is `crate::state::State`, separate from the weights.

mod adapter;
mod backbone;
mod config;
pub mod weights;

pub use adapter::DepthAdapter;
pub use backbone::Backbone;
pub use config::{CrsmConfig, HF_ACCEPTED_KEYS, TimeStepRank};
