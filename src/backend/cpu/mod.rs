//! The cpu backend: plain loops over contiguous slices, parallel with rayon where the work is large,
//! and the `gemm` crate for matrix products. Each function is the readable reference its WGSL twin
//! is tested against; shapes are in the first comment, forward above backward.

pub mod adamw;
pub mod binary;
pub mod conv1d;
pub mod cross_entropy;
pub mod elementwise;
pub mod embedding;
pub mod gru;
pub mod kernels;
pub mod layer_mix;
pub mod mamba_step;
pub mod matmul;
pub mod matmul_bf16;
pub mod matmul_f16;
pub mod matvec;
pub mod reduce;
pub mod rmsnorm;
pub mod rollout;
pub mod scan;
pub mod shape;
pub mod simd;
pub mod storage;
pub mod unary;

pub use kernels::Cpu;
pub use storage::CpuStorage;
