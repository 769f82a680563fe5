//! Device selection, and the one place that maps a device (or a tensor's storage) to the backend
//! that runs its kernels. Adding a backend adds a variant here and in `Storage`; every op reaches
//! it through `Device::backend`.

use std::str::FromStr;
use std::sync::Arc;

use super::contract::Backend;
use super::cpu::Cpu;
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
    /// Shapes without values: kernels only count the bytes their results would take.
    Meta(Meta),
}

impl Device {
    /// The kernels of this device.
    pub fn backend(&self) -> &dyn Backend {
        match self {
            Device::Cpu => &Cpu,
            Device::Wgpu(ctx) => ctx,
            Device::Meta(m) => m,
        }
    }

    /// The device that holds `storage`.
    pub fn of(storage: &Storage) -> Device {
        match storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Wgpu(b) => Device::Wgpu(b.context().clone()),
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
    /// mixed-precision training needs. The cpu backend has only the f32 reference.
    pub fn supports_f16(&self) -> bool {
        match self {
            Device::Cpu | Device::Meta(_) => false,
            Device::Wgpu(ctx) => ctx.supports_f16(),
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
            DeviceRequest::Auto => match WgpuContext::open(AdapterKind::Hardware) {
                Ok(ctx) => Ok(Device::Wgpu(ctx)),
                Err(Error::NoAdapter { .. }) => Ok(Device::Cpu),
                Err(e) => Err(e),
            },
        }
    }
}

/// What `--device` accepts: `auto` (a real GPU adapter if there is one, else cpu), `cpu`, `gpu`
/// (a real adapter or an error saying which driver to install) and `lavapipe` (Mesa's software
/// Vulkan device, for correctness runs without a GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    Auto,
    Cpu,
    Gpu,
    Lavapipe,
}

impl FromStr for DeviceRequest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            "lavapipe" | "llvmpipe" => Ok(Self::Lavapipe),
            _ => Err(Error::UnknownDevice(s.to_string())),
        }
    }
}
