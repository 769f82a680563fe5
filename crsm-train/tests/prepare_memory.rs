//! `prepare`'s memory is bounded by its batch, not by the largest document: one 8 MB document
//! (no paragraph breaks to help, only lines) is tokenized in pieces. Before the pieces, the
//! tokenizer held about 120 bytes per input byte (8 MB -> ~1 GB). Its own test binary: the peak
//! is read from getrusage(RUSAGE_CHILDREN), which covers every child this process waited for.

use std::process::Command;

#[test]
fn prepare_of_one_large_document_stays_small() {
    let dir = std::env::temp_dir().join(format!("crsm-prepare-mem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let line = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\n";
    let text = line.repeat((8 << 20) / line.len());
    let input = dir.join("book.txt");
    std::fs::write(&input, &text).unwrap();
    let tokenizer = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data/gpt-neox-20b_tokenizer.json");
    let out = Command::new(env!("CARGO_BIN_EXE_crsm-train"))
        .args(["prepare", "--input", input.to_str().unwrap()])
        .args(["--tokenizer", tokenizer.to_str().unwrap()])
        .args(["--out", dir.join("data").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the struct it is given.
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    let peak_mib = usage.ru_maxrss as u64 / 1024; // kilobytes on Linux
    assert!(peak_mib < 400, "prepare of 8 MB peaked at {peak_mib} MiB");
    std::fs::remove_dir_all(&dir).ok();
}
