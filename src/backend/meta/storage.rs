//! What a meta tensor holds: its element count and element size, and the counters of the device
//! that made it (to give its bytes back when dropped). Counters per device, not per process (the
//! cpu's are process-wide), so two meta runs in one process do not see each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::memory::MemoryStats;

/// Live and peak bytes of one meta device.
#[derive(Debug, Default)]
pub struct Counters {
    live: AtomicU64,
    peak: AtomicU64,
}

impl Counters {
    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            live_bytes: self.live.load(Ordering::SeqCst),
            peak_live_bytes: self.peak.load(Ordering::SeqCst),
            ..MemoryStats::default()
        }
    }

    pub fn reset_peak(&self) {
        self.peak
            .store(self.live.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn add(&self, bytes: u64) {
        let live = self.live.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.peak.fetch_max(live, Ordering::SeqCst);
    }

    fn sub(&self, bytes: u64) {
        let _ = self
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
                Some(l.saturating_sub(bytes))
            });
    }
}

/// A tensor with a size and no values.
pub struct MetaStorage {
    /// Elements.
    pub len: usize,
    /// Bytes per element (4 for f32 and u32, 2 for bf16).
    pub elem_bytes: u64,
    counters: Arc<Counters>,
}

impl MetaStorage {
    /// Counts `len` elements of `elem_bytes` on `counters`.
    pub fn new(len: usize, elem_bytes: u64, counters: &Arc<Counters>) -> Self {
        counters.add(len as u64 * elem_bytes);
        MetaStorage {
            len,
            elem_bytes,
            counters: counters.clone(),
        }
    }

    /// The device this storage counts on.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }
}

impl Drop for MetaStorage {
    fn drop(&mut self) {
        self.counters.sub(self.len as u64 * self.elem_bytes);
    }
}
