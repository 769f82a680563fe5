//! The backends and their one contract. `contract.rs` is the trait every backend implements, with
//! the typed parameters of `params.rs`; `storage.rs` is what tensors hold; `device.rs` picks a
//! backend. Two backends implement it: `cpu` (rayon + the `gemm` crate; the oracle each WGSL
//! kernel is tested against, and the default where no real GPU is present) and `wgpu`
//! (hand-written WGSL under `shaders/`, for Vulkan, Metal and DX12, and lavapipe in CI). A third,
//! `meta`, holds sizes and no values (as PyTorch's meta tensors): `memtest` runs a training step on
//! it to count the bytes without allocating them. With the `cuda` feature, `cuda` runs CUDA C
//! kernels (`shaders/cuda/`, compiled by NVRTC) and cuBLAS on an NVIDIA device.
//!
//! Imports run one way: a backend imports the contract files here (and `error`, `dtype`), never
//! the other backend, and nothing above `backend/`.

pub mod contract;
pub mod device;
pub mod memory;
pub mod params;
pub mod storage;

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod meta;
pub mod wgpu;

pub use self::wgpu::{AdapterKind, BindingLimits, WgpuContext};
pub use contract::Backend;
#[cfg(feature = "cuda")]
pub use cuda::CudaDevice;
pub use device::{Device, DeviceRequest};
pub use memory::MemoryStats;
pub use meta::Meta;
pub use params::*;
pub use storage::Storage;
