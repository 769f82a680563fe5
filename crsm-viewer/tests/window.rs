//! The real window: `crsm-viewer --replay` opens under Xvfb (eframe, wgpu on lavapipe), draws a
//! few frames, saves a screenshot and exits. Without Xvfb it skips with a message, except under
//! `CI=true`, where `.ci/run` installs it and its absence is a failure.

use std::path::Path;
use std::process::Command;

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

#[test]
fn the_window_opens_replays_and_exits_with_a_screenshot() {
    let has_xvfb = Command::new("xvfb-run").arg("--help").output().is_ok();
    if !has_xvfb {
        assert!(
            !under_ci(),
            "CI=true but xvfb-run is missing: .ci/run installs xvfb"
        );
        eprintln!("SKIP the_window_opens...: xvfb-run not found (apt-get install xvfb)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("crsm-viewer-window-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("shot.png");
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/small.jsonl");
    let runtime = dir.join("xdg");
    std::fs::create_dir_all(&runtime).unwrap();
    let out = Command::new("timeout")
        .args(["180", "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"])
        .arg(env!("CARGO_BIN_EXE_crsm-viewer"))
        .arg("--replay")
        .arg(&trace)
        .args(["--exit-after-frames", "5", "--screenshot"])
        .arg(&shot)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("runs xvfb-run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "crsm-viewer failed: {}\n{stderr}",
        out.status
    );
    let bytes = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{stderr}"));
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    assert!(stderr.contains("frame times:"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}
