//! Every op the model is built from, written once for every device. One file per op family: shape
//! and dtype checks, one call into the device's kernel through the backend contract
//! (`backend::Backend`), and the backward closure recorded on the tape, written beside the forward.
//! The kernels themselves live in `backend::cpu::<family>` and `backend::wgpu::<family>` (+
//! `shaders/<family>.wgsl`), under the same names.

mod adamw;
mod binary;
mod conv1d;
mod cross_entropy;
mod embedding;
mod gru;
mod layer_mix;
mod matmul;
mod precision;
mod reduce;
mod rmsnorm;
mod rollout;
mod scan;
mod shape;
mod unary;

pub use adamw::*;
pub use binary::*;
pub use conv1d::*;
pub use cross_entropy::*;
pub use embedding::*;
pub use gru::*;
pub use layer_mix::*;
pub use matmul::*;
pub use precision::*;
pub use reduce::*;
pub use rmsnorm::*;
pub use rollout::*;
pub use scan::*;
pub use shape::*;
pub use unary::*;
