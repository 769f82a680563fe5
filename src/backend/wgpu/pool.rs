//! Device buffers and their pool. Freed buffers go back to a free list keyed by exact size and are
//! reused, so a training step allocates from the driver only on its first run. The counters here are
//! exact byte counts of what the engine holds; `memtest` reads them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::WgpuContext;
use crate::backend::memory::MemoryStats;

/// Every buffer can be a storage binding and both ends of a copy.
pub(crate) const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

#[derive(Default)]
pub(crate) struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    pub stats: MemoryStats,
}

impl Pool {
    /// A buffer of exactly `bytes` (rounded up to 4; at least 4), reused when one is free.
    pub fn take(&mut self, device: &wgpu::Device, bytes: u64) -> wgpu::Buffer {
        let size = padded(bytes);
        let buffer = match self.free.get_mut(&size).and_then(|v| v.pop()) {
            Some(b) => {
                self.stats.pooled_bytes -= size;
                b
            }
            None => {
                self.stats.driver_allocations += 1;
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("crsm tensor"),
                    size,
                    usage: USAGE,
                    mapped_at_creation: false,
                })
            }
        };
        self.stats.live_bytes += size;
        self.stats.peak_live_bytes = self.stats.peak_live_bytes.max(self.stats.live_bytes);
        buffer
    }

    pub fn give_back(&mut self, buffer: wgpu::Buffer) {
        let size = buffer.size();
        self.stats.live_bytes -= size;
        self.stats.pooled_bytes += size;
        self.free.entry(size).or_default().push(buffer);
    }

    /// Returns pooled buffers to the driver.
    pub fn trim(&mut self) {
        self.free.clear();
        self.stats.pooled_bytes = 0;
    }
}

pub(crate) fn padded(bytes: u64) -> u64 {
    bytes.max(4).div_ceil(4) * 4
}

/// A device buffer owned by a tensor; it returns to the pool when dropped.
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    /// Bytes the tensor uses (the buffer may be up to 3 bytes larger).
    bytes: u64,
    ctx: Arc<WgpuContext>,
}

impl GpuBuffer {
    pub(crate) fn new(buffer: wgpu::Buffer, bytes: u64, ctx: Arc<WgpuContext>) -> Self {
        GpuBuffer {
            buffer: Some(buffer),
            bytes,
            ctx,
        }
    }
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer is present until drop")
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn context(&self) -> &Arc<WgpuContext> {
        &self.ctx
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.ctx.pool_lock().give_back(b);
        }
    }
}

pub(crate) type PoolLock<'a> = std::sync::MutexGuard<'a, Pool>;
pub(crate) type SharedPool = Mutex<Pool>;
