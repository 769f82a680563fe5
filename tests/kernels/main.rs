//! Kernel tests: every op's WGSL kernel against its cpu twin on lavapipe (and, with the `cuda`
//! feature, its CUDA kernel where a device opens), and every backward against finite differences.
//! One test binary, so lavapipe is opened and shaders compiled once.

mod common;

mod adamw;
mod binding_limit;
mod conv1d;
mod cross_entropy;
mod device;
mod elementwise;
mod embedding;
mod gru;
mod layer_mix;
mod matmul;
mod matmul_bf16;
mod matmul_f16;
mod rmsnorm;
mod rollout;
mod scan;
mod shape;
