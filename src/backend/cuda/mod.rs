//! The cuda backend (feature `cuda`): hand-written CUDA C kernels in `shaders/cuda/` (one `.cu`
//! per kernel family, compiled by NVRTC at first use and cached), matrix products through cuBLAS,
//! everything on one stream of one device. cudarc binds the driver, NVRTC and cuBLAS with dynamic
//! loading, so the feature builds on a machine with no toolkit and no GPU; opening a device checks
//! the libraries first and answers an error naming what to install (`loader.rs`).
//!
//! The kernels follow the designs of the WGSL ones (the selective scan's chunked recompute, the
//! rollout kernels' per-row blocks and the counter-based stream) and are tested against the same
//! cpu twins. Kernels this backend lacks keep the contract's `Unsupported` default:
//! `mamba_step` (the model composes the decode step from the other ops).

mod buffer;
pub(crate) mod context;
mod kernels;
mod loader;
pub mod module_cache;

mod adamw;
mod conv1d;
mod cross_entropy;
mod elementwise;
mod embedding;
mod gru;
mod layer_mix;
mod matmul;
mod reduce;
mod rmsnorm;
mod rollout;
mod scan;
mod shape;

pub use buffer::CudaBuffer;
pub use context::CudaDevice;
