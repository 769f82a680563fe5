//! The process's allocator policy for training on the cpu.
//!
//! A training step allocates and frees the same few hundred megabytes of activations and
//! gradients every step. By default glibc serves blocks over 128 KiB to 32 MiB (its threshold
//! adapts) with fresh `mmap`s and returns freed memory at the top of the heap to the kernel, so
//! every step page-faults its tensors back in and the kernel zeroes each page: about a tenth of
//! a cpu training step went to page faults and page clearing. Keeping freed memory in the heap
//! (a caching allocator, as PyTorch's is) makes a step reuse the previous step's pages.

/// Serves blocks up to 32 MiB (glibc's largest mmap threshold) from the heap and never trims it.
/// No effect outside glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists (first thing in main) and both values are within glibc's accepted ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
