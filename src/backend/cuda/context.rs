//! One CUDA device: its driver context and stream (every kernel, copy and product runs on that one
//! stream, in order), its cuBLAS handle, its compiled modules, and the byte counters behind
//! `memory_stats`. Opening checks that the driver loads first, so a machine without one gets an
//! error naming what to install, never a panic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, DeviceRepr, LaunchConfig};

use super::loader::{guarded, require_cublas, require_driver};
use super::module_cache::ModuleCache;
use crate::backend::memory::MemoryStats;
use crate::error::{Error, Result};

/// Threads per block of the elementwise kernels (the `.cu` headers' launch shapes).
pub const BLOCK: u32 = 256;

/// The most blocks one launch uses; the kernels' grid-stride and block-stride loops cover the rest.
pub const MAX_BLOCKS: u64 = 65535;

/// Exact byte accounting of the tensors on one device.
#[derive(Default)]
pub struct Counters {
    live: AtomicU64,
    peak: AtomicU64,
    allocations: AtomicU64,
}

impl Counters {
    pub fn allocated(&self, bytes: u64) {
        let live = self.live.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.peak.fetch_max(live, Ordering::SeqCst);
        self.allocations.fetch_add(1, Ordering::SeqCst);
    }

    pub fn freed(&self, bytes: u64) {
        let _ = self
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
                Some(l.saturating_sub(bytes))
            });
    }
}

/// A CUDA device opened for the engine.
pub struct CudaDevice {
    ordinal: usize,
    name: String,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// Created at the first product (cuBLAS is loaded only then).
    blas: OnceLock<std::result::Result<Mutex<CudaBlas>, String>>,
    modules: ModuleCache,
    counters: Counters,
}

/// A driver error as the library's error, naming what failed.
pub fn driver_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Cuda(format!("{what}: {e}"))
}

impl CudaDevice {
    /// Opens device `ordinal` (0 for `--device cuda`, N for `cuda:N`).
    pub fn open(ordinal: usize) -> Result<Arc<CudaDevice>> {
        require_driver()?;
        let count = guarded("cuInit", || {
            cudarc::driver::result::init()?;
            cudarc::driver::result::device::get_count()
        })?
        .map_err(|e| Error::NoAdapter {
            wanted: "cuda",
            hint: format!("the NVIDIA driver loaded but found no usable device ({e})"),
        })?;
        if count <= 0 {
            return Err(Error::NoAdapter {
                wanted: "cuda",
                hint: "the NVIDIA driver loaded but reports no CUDA device".to_string(),
            });
        }
        if ordinal >= count as usize {
            return Err(Error::NoAdapter {
                wanted: "cuda",
                hint: format!(
                    "cuda:{ordinal} asked for, but the driver reports {count} device(s) (cuda:0 .. cuda:{})",
                    count - 1
                ),
            });
        }
        let ctx = guarded("cuCtxCreate", || CudaContext::new(ordinal))?
            .map_err(|e| driver_err("opening the CUDA context", e))?;
        // One stream for everything, so the driver's per-buffer event tracking (for work on
        // several streams) is not needed.
        // SAFETY: no buffer exists yet, and this backend uses only the one stream.
        unsafe { ctx.disable_event_tracking() };
        let name = ctx.name().unwrap_or_else(|_| "unknown".to_string());
        let arch = ctx
            .compute_capability()
            .map_err(|e| driver_err("cuDeviceGetAttribute", e))?;
        let stream = ctx.default_stream();
        Ok(Arc::new(CudaDevice {
            ordinal,
            name,
            ctx,
            stream,
            blas: OnceLock::new(),
            modules: ModuleCache::new(arch),
            counters: Counters::default(),
        }))
    }

    /// `cuda:<ordinal>:<name>`, as errors and `Device::name` print it.
    pub fn name(&self) -> String {
        format!("cuda:{}:{}", self.ordinal, self.name)
    }

    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// Waits for every launched kernel and copy (benches read the clock after it).
    pub fn sync(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| driver_err("cuStreamSynchronize", e))
    }

    pub(super) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    pub(super) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn memory_stats(&self) -> MemoryStats {
        MemoryStats {
            live_bytes: self.counters.live.load(Ordering::SeqCst),
            peak_live_bytes: self.counters.peak.load(Ordering::SeqCst),
            pooled_bytes: 0,
            driver_allocations: self.counters.allocations.load(Ordering::SeqCst),
        }
    }

    pub fn reset_peak(&self) {
        let live = self.counters.live.load(Ordering::SeqCst);
        self.counters.peak.store(live, Ordering::SeqCst);
    }

    /// The entry point `entry` of `shaders/cuda/<file>.cu`.
    pub(super) fn function(&self, file: &'static str, entry: &'static str) -> Result<CudaFunction> {
        self.modules.function(&self.ctx, file, entry)
    }

    /// Runs `f` with the device's cuBLAS handle (created on first use).
    pub(super) fn with_blas<T>(&self, f: impl FnOnce(&CudaBlas) -> Result<T>) -> Result<T> {
        let blas = self.blas.get_or_init(|| {
            require_cublas().map_err(|e| e.to_string())?;
            guarded("cublasCreate", || CudaBlas::new(self.stream.clone()))
                .map_err(|e| e.to_string())?
                .map(Mutex::new)
                .map_err(|e| format!("cublasCreate: {e}"))
        });
        match blas {
            Ok(blas) => {
                // cuBLAS runs on the calling thread's current context: make it this device's.
                self.ctx
                    .bind_to_thread()
                    .map_err(|e| driver_err("cuCtxSetCurrent", e))?;
                f(&blas.lock().unwrap_or_else(|e| e.into_inner()))
            }
            Err(e) => Err(Error::Cuda(e.clone())),
        }
    }

    /// The first `len` elements of a device slice on the host (waits for the work writing them).
    pub(super) fn download<T: DeviceRepr + Default + Clone>(
        &self,
        s: &cudarc::driver::CudaSlice<T>,
        len: usize,
    ) -> Result<Vec<T>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut out = vec![T::default(); len];
        self.stream
            .memcpy_dtoh(&s.slice(..len), &mut out[..])
            .map_err(|e| driver_err("cuMemcpyDtoH", e))?;
        // The copy waited for the stream; a kernel that failed earlier reports here, and errors
        // the driver stored from calls that cannot return one (frees in `Drop`) surface too.
        self.sync()?;
        self.ctx
            .check_err()
            .map_err(|e| driver_err("an earlier CUDA call", e))?;
        Ok(out)
    }
}

/// A grid of `BLOCK`-thread blocks for `threads` grid-stride threads (None: nothing to launch).
pub fn grid(threads: usize) -> Option<LaunchConfig> {
    blocks(threads.div_ceil(BLOCK as usize), BLOCK)
}

/// `n` blocks of `threads` each, at most `MAX_BLOCKS` (the kernels loop over the rest); None when
/// there is nothing to launch.
pub fn blocks(n: usize, threads: u32) -> Option<LaunchConfig> {
    (n > 0).then(|| LaunchConfig {
        grid_dim: ((n as u64).min(MAX_BLOCKS) as u32, 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// Launches `entry` of `shaders/cuda/<file>.cu` on `dev`'s stream with the given arguments (each
/// an expression whose reference is pushed), when `cfg` (an `Option<LaunchConfig>`) has work.
/// The arguments must match the entry point's signature in the `.cu` file, in order and type.
macro_rules! launch {
    ($dev:expr, $file:literal, $entry:literal, $cfg:expr; $($arg:expr),* $(,)?) => {{
        if let Some(cfg) = $cfg {
            use cudarc::driver::PushKernelArg as _;
            let f = $dev.function($file, $entry)?;
            let stream = $dev.stream().clone();
            let mut builder = stream.launch_builder(&f);
            $( builder.arg($arg); )*
            // SAFETY: the arguments follow the entry point's signature in shaders/cuda/$file.cu
            // (checked by the kernel tests against the cpu twins), and every buffer holds the
            // elements the kernel indexes (sizes checked by the op and allocated by the launcher).
            unsafe { builder.launch(cfg) }
                .map_err(|e| $crate::backend::cuda::context::driver_err($entry, e))?;
        }
    }};
}
pub(crate) use launch;
