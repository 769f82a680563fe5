//! The size check every command that builds a model for training runs first: the run's bytes
//! counted from its config with overflow-checked arithmetic (`crsm::train::run_size`), refused
//! when they overflow or exceed the device's memory, before a single tensor is allocated. Without
//! it, an absurd `hidden_size` or batch aborts the process in the allocator (exit 134) or is
//! killed by the OOM killer (137) after minutes of work.

use anyhow::Result;
use crsm::Device;
use crsm::model::CrsmConfig;
use crsm::train::run_size::{RunSize, check_fits, host_memory, run_size};

/// The memory a run on `device` may use: the host's RAM on the cpu (and the meta device, which
/// stands for it). wgpu reports no total for an adapter, so there only the overflow is checked.
pub fn device_memory(device: &Device) -> Option<u64> {
    match device {
        Device::Cpu | Device::Meta(_) => host_memory(),
        // wgpu reports no total; the cuda backend's (the `cuda` feature) is shared with other
        // processes, so neither is the engine's budget.
        _ => None,
    }
}

/// Counts the run of `model` at `batch` x `seq` and refuses it when it cannot fit `device`.
pub fn refuse_too_large(
    model: &CrsmConfig,
    batch: usize,
    seq: usize,
    device: &Device,
) -> Result<RunSize> {
    let size = run_size(model, batch, seq)?;
    if let Some(available) = device_memory(device) {
        check_fits(&size, available, &device.name())?;
    }
    Ok(size)
}
