//! Every CUDA C source of `shaders/cuda/` compiles with NVRTC, and its PTX holds every entry point
//! the file declares. Needs NVRTC only (no GPU, no driver): CI installs the
//! `nvidia-cuda-nvrtc-cu12` wheel and puts its `nvidia/cuda_nvrtc/lib` on LD_LIBRARY_PATH.
//! Without NVRTC the test skips, unless `CRSM_REQUIRE_NVRTC=1` (CI), where it fails.
#![cfg(feature = "cuda")]

use crsm::backend::cuda::module_cache::{SOURCES, compile};

/// The names of a source's `extern "C" __global__` functions.
fn entry_points(code: &str) -> Vec<String> {
    code.split("extern \"C\" __global__ void ")
        .skip(1)
        .map(|rest| rest.split('(').next().unwrap_or("").trim().to_string())
        .collect()
}

#[test]
fn every_cuda_source_compiles_with_nvrtc() {
    // Compile for real (not from an earlier run's PTX).
    let cache = std::env::temp_dir().join(format!("crsm-nvrtc-test-{}", std::process::id()));
    // SAFETY: set before any thread of this test binary reads the environment (one test here).
    unsafe { std::env::set_var("CRSM_CUDA_CACHE", &cache) };
    let required = std::env::var("CRSM_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/cuda"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "cu"))
        })
        .count();
    assert_eq!(
        files,
        SOURCES.len(),
        "every shaders/cuda/*.cu is listed in SOURCES"
    );
    // No architecture (NVRTC's default), and those of an A100 and an H100 / H200.
    for arch in [None, Some((8, 0)), Some((9, 0))] {
        for source in SOURCES {
            let ptx = match compile(source, arch) {
                Ok(ptx) => ptx,
                Err(e) if !required && e.to_string().contains("libnvrtc.so not found") => {
                    eprintln!("NVRTC compile test skipped: {e}");
                    return;
                }
                Err(e) => panic!("{} for {arch:?}: {e}", source.name),
            };
            let entries = entry_points(source.code);
            assert!(!entries.is_empty(), "{}: no entry points", source.name);
            for entry in entries {
                assert!(
                    ptx.contains(&format!(".entry {entry}(")),
                    "{}: entry {entry} missing from the PTX",
                    source.name
                );
            }
        }
    }
    // The disk cache now holds each file's PTX (3 architectures each).
    let cached = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    assert_eq!(cached, 3 * SOURCES.len());
    let _ = std::fs::remove_dir_all(&cache);
}
