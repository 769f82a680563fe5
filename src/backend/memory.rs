//! Exact byte accounting of the tensors a device holds, the same record for every backend, so
//! `memtest` reports a step's peak on any device.

/// Exact byte accounting of the engine's memory on one device (on the cpu: host tensor storage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in buffers that tensors hold now.
    pub live_bytes: u64,
    /// The most `live_bytes` has been since the last `reset_peak`.
    pub peak_live_bytes: u64,
    /// Bytes in freed buffers kept for reuse.
    pub pooled_bytes: u64,
    /// Buffers created through the driver over the context's life.
    pub driver_allocations: u64,
}
