//! Host memory of the cpu backend, and its byte accounting (the twin of the wgpu pool's
//! `MemoryStats`, so `memtest` can report a training step's peak on any device). Process-wide
//! counters: every `CpuStorage` adds its bytes when made and takes them back when dropped.
//! Kernels' scratch vectors that never become a tensor are not counted (they live only inside one
//! kernel call).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::memory::MemoryStats;

/// The values of one cpu tensor. Make it with `CpuStorage::f32` / `u32`, which count its bytes;
/// dropping it uncounts them.
pub enum CpuStorage {
    F32(Vec<f32>),
    U32(Vec<u32>),
    /// bfloat16 bits.
    BF16(Vec<u16>),
}

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

/// Bytes held by cpu tensors now and the most since the last `reset_peak` (in `live_bytes` and
/// `peak_live_bytes`; the pool fields are 0: the cpu backend has no pool).
pub fn memory_stats() -> MemoryStats {
    MemoryStats {
        live_bytes: LIVE.load(Ordering::SeqCst),
        peak_live_bytes: PEAK.load(Ordering::SeqCst),
        ..MemoryStats::default()
    }
}

/// Starts a new peak measurement from what is live now.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::SeqCst), Ordering::SeqCst);
}

impl CpuStorage {
    /// f32 host storage, counted.
    pub fn f32(data: Vec<f32>) -> Self {
        allocated(data.len() as u64 * 4);
        CpuStorage::F32(data)
    }

    /// u32 host storage, counted.
    pub fn u32(data: Vec<u32>) -> Self {
        allocated(data.len() as u64 * 4);
        CpuStorage::U32(data)
    }

    /// bf16 host storage (the bits), counted.
    pub fn bf16(data: Vec<u16>) -> Self {
        allocated(data.len() as u64 * 2);
        CpuStorage::BF16(data)
    }

    fn bytes(&self) -> u64 {
        match self {
            CpuStorage::F32(v) => v.len() as u64 * 4,
            CpuStorage::U32(v) => v.len() as u64 * 4,
            CpuStorage::BF16(v) => v.len() as u64 * 2,
        }
    }
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        let bytes = self.bytes();
        // Saturating: storage built without the counting constructors must not wrap the count.
        let _ = LIVE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |live| {
            Some(live.saturating_sub(bytes))
        });
    }
}

fn allocated(bytes: u64) {
    let live = LIVE.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(live, Ordering::SeqCst);
}
