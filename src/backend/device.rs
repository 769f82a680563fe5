//! Device selection, and the one place that maps a device (or a tensor's storage) to the backend
//! that runs its kernels. Adding a backend adds a variant here and in `Storage`; every op reaches
//! it through `Device::backend`.

use std::str::FromStr;
use std::sync::Arc;

use super::contract::Backend;
use super::cpu::Cpu;
#[cfg(feature = "cuda")]
use super::cuda::CudaDevice;
use super::memory::MemoryStats;
use super::meta::Meta;
use super::storage::Storage;
use super::wgpu::{AdapterKind, WgpuContext};
use crate::error::{Error, Result};

/// Where tensors live and kernels run.
#[derive(Clone)]
pub enum Device {
    Cpu,
    Wgpu(Arc<WgpuContext>),
    /// An NVIDIA device through the CUDA driver (the `cuda` feature).
    #[cfg(feature = "cuda")]
    Cuda(Arc<CudaDevice>),
    /// Shapes without values: kernels only count the bytes their results would take.
    Meta(Meta),
}

impl Device {
    /// The kernels of this device.
    pub fn backend(&self) -> &dyn Backend {
        match self {
            Device::Cpu => &Cpu,
            Device::Wgpu(ctx) => ctx,
            #[cfg(feature = "cuda")]
            Device::Cuda(dev) => dev,
            Device::Meta(m) => m,
        }
    }

    /// The device that holds `storage`.
    pub fn of(storage: &Storage) -> Device {
        match storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Wgpu(b) => Device::Wgpu(b.context().clone()),
            #[cfg(feature = "cuda")]
            Storage::Cuda(b) => Device::Cuda(b.device().clone()),
            Storage::Meta(m) => Device::Meta(Meta::with_counters(m.counters().clone())),
        }
    }

    /// A short human name, e.g. `cpu` or `wgpu:llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub fn name(&self) -> String {
        self.backend().name()
    }

    /// A new shapes-only device with its own byte count (see `backend/meta`).
    pub fn meta() -> Device {
        Device::Meta(Meta::new())
    }

    pub fn is_meta(&self) -> bool {
        matches!(self, Device::Meta(_))
    }

    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// Whether f16 arithmetic runs natively here (a wgpu device opened with shader-f16), as
    /// mixed-precision training needs. The cpu backend has only the f32 reference; the cuda
    /// backend rounds the operands of f16 products (cuBLAS, f32 accumulation).
    pub fn supports_f16(&self) -> bool {
        match self {
            Device::Cpu | Device::Meta(_) => false,
            Device::Wgpu(ctx) => ctx.supports_f16(),
            #[cfg(feature = "cuda")]
            Device::Cuda(_) => true,
        }
    }

    /// The engine's exact byte count of the tensors on this device (live now, and the peak since
    /// the last `reset_peak`). On the cpu the counters are process-wide.
    pub fn memory_stats(&self) -> MemoryStats {
        self.backend().memory_stats()
    }

    /// Starts a new peak measurement from what is live now.
    pub fn reset_peak(&self) {
        self.backend().reset_peak()
    }

    pub fn same_as(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Wgpu(a), Device::Wgpu(b)) => Arc::ptr_eq(a, b),
            #[cfg(feature = "cuda")]
            (Device::Cuda(a), Device::Cuda(b)) => Arc::ptr_eq(a, b),
            (Device::Meta(a), Device::Meta(b)) => a.same_as(b),
            _ => false,
        }
    }

    /// Opens the device a user asked for (see `DeviceRequest`).
    pub fn open(request: DeviceRequest) -> Result<Device> {
        match request {
            DeviceRequest::Cpu => Ok(Device::Cpu),
            DeviceRequest::Gpu => Ok(Device::Wgpu(WgpuContext::open(AdapterKind::Hardware)?)),
            DeviceRequest::Lavapipe => Ok(Device::Wgpu(WgpuContext::open(AdapterKind::Software)?)),
            #[cfg(feature = "cuda")]
            DeviceRequest::Cuda(ordinal) => Ok(Device::Cuda(CudaDevice::open(ordinal)?)),
            // A Vulkan / Metal / DX12 adapter first; with the `cuda` feature a CUDA device when
            // there is none; else the cpu.
            DeviceRequest::Auto => match WgpuContext::open(AdapterKind::Hardware) {
                Ok(ctx) => Ok(Device::Wgpu(ctx)),
                #[cfg(feature = "cuda")]
                Err(Error::NoAdapter { .. }) => match CudaDevice::open(0) {
                    Ok(dev) => Ok(Device::Cuda(dev)),
                    Err(Error::NoAdapter { .. }) => Ok(Device::Cpu),
                    Err(e) => Err(e),
                },
                #[cfg(not(feature = "cuda"))]
                Err(Error::NoAdapter { .. }) => Ok(Device::Cpu),
                Err(e) => Err(e),
            },
        }
    }

    /// Waits for the work queued on this device (a no-op on the cpu and meta devices), so a
    /// clock read after it measures finished work.
    pub fn sync(&self) -> Result<()> {
        match self {
            Device::Cpu | Device::Meta(_) => Ok(()),
            Device::Wgpu(ctx) => ctx.sync(),
            #[cfg(feature = "cuda")]
            Device::Cuda(dev) => dev.sync(),
        }
    }
}

/// What `--device` accepts: `auto` (a real GPU adapter if there is one, else cpu), `cpu`, `gpu`
/// (a real adapter or an error saying which driver to install), `lavapipe` (Mesa's software
/// Vulkan device, for correctness runs without a GPU) and, with the `cuda` feature, `cuda` /
/// `cuda:N` (CUDA device N, 0 by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    Auto,
    Cpu,
    Gpu,
    Lavapipe,
    #[cfg(feature = "cuda")]
    Cuda(usize),
}

impl std::fmt::Display for DeviceRequest {
    /// The flag's spelling (what `from_str` reads back).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceRequest::Auto => f.write_str("auto"),
            DeviceRequest::Cpu => f.write_str("cpu"),
            DeviceRequest::Gpu => f.write_str("gpu"),
            DeviceRequest::Lavapipe => f.write_str("lavapipe"),
            #[cfg(feature = "cuda")]
            DeviceRequest::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for DeviceRequest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            "lavapipe" | "llvmpipe" => Ok(Self::Lavapipe),
            lower if lower == "cuda" || lower.starts_with("cuda:") => cuda_request(s, lower),
            _ => Err(Error::UnknownDevice(s.to_string())),
        }
    }
}

/// `cuda` or `cuda:N`.
#[cfg(feature = "cuda")]
fn cuda_request(s: &str, lower: &str) -> Result<DeviceRequest> {
    match lower.strip_prefix("cuda:") {
        None => Ok(DeviceRequest::Cuda(0)),
        Some(n) => n
            .parse()
            .map(DeviceRequest::Cuda)
            .map_err(|_| Error::InvalidArgument {
                op: "device",
                detail: format!("'{s}': expected cuda or cuda:N with N a device number (0, 1, ..)"),
            }),
    }
}

/// Without the `cuda` feature, `cuda` names a device this build cannot open.
#[cfg(not(feature = "cuda"))]
fn cuda_request(s: &str, _lower: &str) -> Result<DeviceRequest> {
    Err(Error::InvalidArgument {
        op: "device",
        detail: format!("'{s}': this build has no CUDA backend; rebuild with `--features cuda`"),
    })
}
