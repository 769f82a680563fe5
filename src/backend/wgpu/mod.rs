//! The wgpu backend: one context per adapter, pooled buffers, and one launcher file per kernel
//! family beside its WGSL in `shaders/`.

mod binding;
mod context;
mod pool;

pub use binding::Binding;
pub(crate) use context::kernel;
pub use context::{AdapterKind, BindingLimits, Kernel, WgpuContext};
pub use pool::GpuBuffer;

pub mod adamw;
pub mod binary;
pub mod conv1d;
pub mod cross_entropy;
pub mod embedding;
pub mod gru;
pub mod kernels;
pub mod layer_mix;
pub mod matmul;
pub mod matmul_f16;
pub mod reduce;
pub mod rmsnorm;
pub mod rollout;
pub mod scan;
pub mod shape;
pub mod unary;
