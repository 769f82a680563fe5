//! What a tensor's values live in: one variant per backend. Only the backend a variant belongs to
//! looks inside it (each unwraps its own in its `Backend` implementation); everything above
//! `backend/` holds a `Storage` and hands it back to the device's kernels.

use super::cpu::CpuStorage;
#[cfg(feature = "cuda")]
use super::cuda::CudaBuffer;
use super::meta::MetaStorage;
use super::wgpu::GpuBuffer;

pub enum Storage {
    Cpu(CpuStorage),
    Wgpu(GpuBuffer),
    /// Memory of a CUDA device (the `cuda` feature).
    #[cfg(feature = "cuda")]
    Cuda(CudaBuffer),
    /// A size without values (the meta device: memtest's byte count).
    Meta(MetaStorage),
}
