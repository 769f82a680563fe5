//! The three libraries the backend loads at run time (libcuda, NVRTC, cuBLAS), checked before any
//! cudarc call: cudarc's dynamic loading panics when a library is missing, and a user must get an
//! error naming what to install instead. A library that loads but lacks a symbol (one older than
//! the CUDA 12.2 API the bindings are pinned to) also panics inside cudarc; `guarded` turns that
//! into an error too.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, Result};

/// Runs `f` (a cudarc call), turning a panic into `Error::Cuda` naming `what`.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_string());
        Error::Cuda(format!("{what}: {detail}"))
    })
}

/// Whether a library's loader found it (a panic while looking counts as not found).
fn present(check: fn() -> bool) -> bool {
    catch_unwind(check).unwrap_or(false)
}

/// libcuda (the NVIDIA driver), or `Error::NoAdapter` saying to install the driver.
pub fn require_driver() -> Result<()> {
    // SAFETY: only tries to open the library by its candidate names.
    if present(|| unsafe { cudarc::driver::sys::is_culib_present() }) {
        Ok(())
    } else {
        Err(Error::NoAdapter {
            wanted: "cuda",
            hint: "libcuda.so not found: install the NVIDIA driver (it provides libcuda.so.1)"
                .to_string(),
        })
    }
}

/// NVRTC, which compiles `shaders/cuda/*.cu` at first use.
pub fn require_nvrtc() -> Result<()> {
    // SAFETY: only tries to open the library by its candidate names.
    if present(|| unsafe { cudarc::nvrtc::sys::is_culib_present() }) {
        Ok(())
    } else {
        Err(Error::NoAdapter {
            wanted: "cuda",
            hint: "libnvrtc.so not found: install the CUDA toolkit 12 (or `pip install \
                   nvidia-cuda-nvrtc-cu12` and add its nvidia/cuda_nvrtc/lib folder to \
                   LD_LIBRARY_PATH)"
                .to_string(),
        })
    }
}

/// cuBLAS, which runs the matrix products.
pub fn require_cublas() -> Result<()> {
    // SAFETY: only tries to open the library by its candidate names.
    if present(|| unsafe { cudarc::cublas::sys::is_culib_present() }) {
        Ok(())
    } else {
        Err(Error::NoAdapter {
            wanted: "cuda",
            hint: "libcublas.so not found: install the CUDA toolkit 12 (or `pip install \
                   nvidia-cublas-cu12` and add its nvidia/cublas/lib folder to LD_LIBRARY_PATH)"
                .to_string(),
        })
    }
}
