//! The meta backend: shapes without values, as PyTorch's `meta` tensors. Every kernel makes
//! storage of its result's size and nothing else, and the byte accounting is the cpu backend's
//! (the same element sizes, the same results kept), so a training step run here reports the peak
//! a real step would reach, without allocating it: what `crsm-train memtest` counts on. Values
//! read back are zeros (token ids 0, a loss of 0), which is all the ops above need to go on.
//!
//! Imports only the contract files, like every backend.

mod kernels;
mod storage;

pub use kernels::Meta;
pub use storage::MetaStorage;
