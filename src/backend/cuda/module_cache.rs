//! The CUDA C sources of `shaders/cuda/` (one file per kernel family), compiled by NVRTC at first
//! use and cached twice: per process (one loaded module per file and context, one function per
//! entry point) and on disk (the PTX text, keyed by a hash of the source, the options and the
//! NVRTC version, so a second run skips NVRTC). Compiling needs NVRTC only, no GPU and no driver:
//! `tests/cuda_nvrtc.rs` compiles every file this way in CI.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule};
use cudarc::nvrtc::{CompileOptions, Ptx, compile_ptx_with_opts};
use sha2::{Digest, Sha256};

use super::loader::{guarded, require_nvrtc};
use crate::error::{Error, Result};

/// One `.cu` file. `exact`: compiled with `--fmad=false`, for kernels whose results must equal
/// their cpu twins bit for bit (no a * b + c contracted into one rounding).
pub struct Source {
    pub name: &'static str,
    pub code: &'static str,
    pub exact: bool,
}

macro_rules! source {
    ($name:literal) => {
        source!($name, false)
    };
    ($name:literal, $exact:expr) => {
        Source {
            name: $name,
            code: include_str!(concat!("../../../shaders/cuda/", $name, ".cu")),
            exact: $exact,
        }
    };
}

/// Every kernel family's source.
pub const SOURCES: &[Source] = &[
    source!("adamw"),
    source!("binary"),
    source!("conv1d"),
    source!("convert"),
    source!("cross_entropy"),
    source!("embedding"),
    source!("gru"),
    source!("layer_mix"),
    source!("reduce"),
    source!("rmsnorm"),
    source!("rollout", true),
    source!("scan"),
    source!("shape"),
    source!("unary"),
];

/// The source called `name` (a file stem of `shaders/cuda/`).
pub fn source(name: &str) -> Result<&'static Source> {
    SOURCES
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Error::Cuda(format!("no CUDA source named {name}")))
}

/// NVRTC's options for `source`; `arch` is the device's compute capability (None: NVRTC's
/// default virtual architecture, enough to check that a file compiles).
fn options(source: &Source, arch: Option<(i32, i32)>) -> Vec<String> {
    let mut options = vec!["--std=c++17".to_string()];
    if let Some((major, minor)) = arch {
        options.push(format!("--gpu-architecture=compute_{major}{minor}"));
    }
    if source.exact {
        options.push("--fmad=false".to_string());
    }
    options
}

/// NVRTC's version, part of the disk cache's key.
fn nvrtc_version() -> Result<(i32, i32)> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: writes two ints; NVRTC was found loadable by the caller.
    let status = guarded("nvrtcVersion", || unsafe {
        cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor)
    })?;
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(Error::Cuda(format!("nvrtcVersion: {status:?}")));
    }
    Ok((major, minor))
}

/// The PTX of `source` for `arch`: from the disk cache when there, else compiled by NVRTC (and
/// stored). Errors carry NVRTC's log.
pub fn compile(source: &Source, arch: Option<(i32, i32)>) -> Result<String> {
    require_nvrtc()?;
    let options = options(source, arch);
    let (major, minor) = nvrtc_version()?;
    let mut key = Sha256::new();
    key.update(format!("nvrtc {major}.{minor}\n{}\n", options.join(" ")));
    key.update(source.code);
    let key: String = key.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let cached = cache_dir().map(|d| d.join(format!("{}-{key}.ptx", source.name)));
    if let Some(ptx) = cached
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        return Ok(ptx);
    }
    let opts = CompileOptions {
        options,
        name: Some(format!("{}.cu", source.name)),
        ..Default::default()
    };
    let ptx = guarded("nvrtc", || compile_ptx_with_opts(source.code, opts))?.map_err(|e| {
        Error::Cuda(format!(
            "compiling shaders/cuda/{}.cu: {}",
            source.name,
            log(&e)
        ))
    })?;
    let text = guarded("nvrtc", || ptx.to_src())?;
    if let Some(path) = cached {
        store(&path, &text);
    }
    Ok(text)
}

/// NVRTC's log of a failed compile (the compiler's messages), else the error itself.
fn log(e: &cudarc::nvrtc::CompileError) -> String {
    match e {
        cudarc::nvrtc::CompileError::CompileError { log, options, .. } => {
            format!("{} (options {options:?})", log.to_string_lossy())
        }
        other => format!("{other:?}"),
    }
}

/// Where compiled PTX is kept: `CRSM_CUDA_CACHE` (empty or `off`: no disk cache), else
/// `$XDG_CACHE_HOME/crsm/cuda`, else `~/.cache/crsm/cuda`.
fn cache_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("CRSM_CUDA_CACHE") {
        return (!dir.is_empty() && dir != "off").then(|| PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("crsm").join("cuda"))
}

/// Writes `text` to `path` through a temporary file and a rename, so a concurrent reader never
/// sees half a file. A cache that cannot be written is only slower: failures are ignored.
fn store(path: &std::path::Path, text: &str) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The loaded modules and functions of one context.
pub struct ModuleCache {
    arch: (i32, i32),
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<(&'static str, &'static str), CudaFunction>>,
}

impl ModuleCache {
    pub fn new(arch: (i32, i32)) -> Self {
        ModuleCache {
            arch,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
        }
    }

    /// The entry point `entry` of `shaders/cuda/<file>.cu`, compiled and loaded on first use.
    pub fn function(
        &self,
        ctx: &Arc<CudaContext>,
        file: &'static str,
        entry: &'static str,
    ) -> Result<CudaFunction> {
        let mut functions = self.functions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = functions.get(&(file, entry)) {
            return Ok(f.clone());
        }
        let module = self.module(ctx, file)?;
        let f = guarded("cuModuleGetFunction", || module.load_function(entry))?.map_err(|e| {
            Error::Cuda(format!("shaders/cuda/{file}.cu has no entry {entry}: {e}"))
        })?;
        functions.insert((file, entry), f.clone());
        Ok(f)
    }

    fn module(&self, ctx: &Arc<CudaContext>, file: &'static str) -> Result<Arc<CudaModule>> {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = modules.get(file) {
            return Ok(m.clone());
        }
        let source = source(file)?;
        let ptx = compile(source, Some(self.arch))?;
        let module = guarded("cuModuleLoadData", || ctx.load_module(Ptx::from_src(ptx)))?
            .map_err(|e| Error::Cuda(format!("loading shaders/cuda/{file}.cu's PTX: {e}")))?;
        modules.insert(source.name, module.clone());
        Ok(module)
    }
}
