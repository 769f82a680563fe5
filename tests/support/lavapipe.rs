//! The software Vulkan device, opened once per test process. Without it a test skips its GPU half
//! locally, but fails under CI (`CI` set to `true` or `1`, any case): CI must never pass by
//! skipping the GPU tests.
//!
//! Each skipping test writes one line straight to stderr (past the harness's output capture, so
//! it shows without `--nocapture`) with the number of tests skipped so far in this process: the
//! last such line of a run is its total.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crsm::Device;
use crsm::backend::{AdapterKind, WgpuContext};

/// Whether this process runs under CI, where a missing GPU is a failure.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

pub fn lavapipe() -> Option<Device> {
    static DEVICE: OnceLock<Result<Device, String>> = OnceLock::new();
    let opened = DEVICE.get_or_init(|| match WgpuContext::open(AdapterKind::Software) {
        Ok(ctx) => Ok(Device::Wgpu(ctx)),
        Err(e) => Err(e.to_string()),
    });
    match opened {
        Ok(device) => Some(device.clone()),
        Err(reason) => {
            if under_ci() {
                panic!(
                    "CI is true or 1, so the GPU tests must run, but lavapipe is unavailable: {reason}"
                );
            }
            report_skip(reason);
            None
        }
    }
}

/// Counts the calling test once (the harness names each test's thread after the test; a test may
/// ask for the device several times) and says so on stderr with the running count.
fn report_skip(reason: &str) {
    static SKIPPED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let test = std::thread::current()
        .name()
        .unwrap_or("an unnamed thread")
        .to_string();
    let mut skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let skipped = skipped.get_or_insert_with(HashSet::new);
    if skipped.insert(test.clone()) {
        let count = skipped.len();
        let line = if count == 1 {
            format!("GPU half skipped in {test} (1 test so far in this process): {reason}\n")
        } else {
            format!(
                "GPU half skipped in {test} ({count} tests so far in this process; why: above)\n"
            )
        };
        // Straight to stderr: `eprintln!` inside a test is captured and shown only on failure.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}
