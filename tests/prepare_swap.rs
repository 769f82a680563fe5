//! `prepare` replaces its output folder as a whole (data/staging.rs): killed at any file-system
//! step of a second prepare into the same folder (`crsm::io::fault`), the folder holds the first
//! prepare's splits or the second's, never one of each; leftovers of a killed prepare are cleaned
//! by the next one; a folder holding anything but splits is refused, not deleted.

#[path = "support/scratch.rs"]
mod scratch;
use scratch::Scratch;

use std::path::Path;

use crsm::data::{BadLinePolicy, ShardHeader, TokenShard, ValSource, prepare, train_bpe_on_texts};
use crsm::io::fault::{self, Fault};

fn corpus(seed: usize, words: usize) -> String {
    let vocab = [
        "the", "lady", "said", "that", "her", "sister", "was", "very", "happy",
    ];
    (0..words)
        .map(|i| vocab[(i * 7 + seed + i / 3) % vocab.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn headers(out: &Path) -> (ShardHeader, ShardHeader) {
    let open = |split| TokenShard::open(out, split, None).unwrap().header().clone();
    (open("train"), open("val"))
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Entries of `dir` whose name starts with `prefix`.
fn entries(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_prepare_killed_at_any_step_never_leaves_mixed_splits() {
    let dir = Scratch::new("prepare-swap", "kill");
    let tok = dir.join("tokenizer.json");
    train_bpe_on_texts(std::iter::once(corpus(0, 300)), 280)
        .unwrap()
        .save(&tok)
        .unwrap();
    let (a, b) = (dir.join("a.txt"), dir.join("b.txt"));
    std::fs::write(&a, corpus(0, 300)).unwrap();
    std::fs::write(&b, corpus(4, 500)).unwrap();
    let out = dir.join("out");
    let run = |input: &Path| {
        prepare(
            input,
            &tok,
            &out,
            &ValSource::Fraction(0.2),
            BadLinePolicy::Fail,
        )
    };
    run(&b).unwrap();
    let from_b = headers(&out);
    run(&a).unwrap();
    let from_a = headers(&out);
    assert_ne!(from_a, from_b);
    let saved_a = dir.join("saved-a");
    copy_dir(&out, &saved_a);

    fault::arm(None);
    run(&b).unwrap();
    let steps = fault::disarm();
    for (i, step) in steps.iter().enumerate() {
        copy_dir(&saved_a, &out);
        fault::arm(Some((i, Fault::Die)));
        let _ = run(&b);
        fault::disarm();
        if out.exists() {
            let got = headers(&out);
            assert!(
                got == from_a || got == from_b,
                "killed at step {i} ({step:?}): mixed splits {got:?}"
            );
        }
        // A real kill leaves a dead PID's leftovers, which the next prepare removes (tested
        // below); this process is alive, so its own go by hand.
        for name in entries(&dir, ".out.") {
            let path = dir.join(name);
            let _ = std::fs::remove_dir_all(&path);
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[test]
fn prepare_cleans_the_leftovers_of_a_killed_prepare() {
    let dir = Scratch::new("prepare-swap", "leftovers");
    let tok = dir.join("tokenizer.json");
    train_bpe_on_texts(std::iter::once(corpus(0, 300)), 280)
        .unwrap()
        .save(&tok)
        .unwrap();
    let text = dir.join("a.txt");
    std::fs::write(&text, corpus(0, 300)).unwrap();
    let out = dir.join("out");
    let run = || {
        prepare(
            &text,
            &tok,
            &out,
            &ValSource::Fraction(0.2),
            BadLinePolicy::Fail,
        )
    };
    run().unwrap();
    let pid = dead_pid();
    // The in-place writer's temporary files, and the temporary folders of the staged one.
    std::fs::write(out.join(format!(".train.bin.tmp.{pid}.0")), "partial").unwrap();
    std::fs::write(out.join(format!(".val.json.tmp.{pid}.3")), "partial").unwrap();
    std::fs::create_dir_all(dir.join(format!(".out.prepare.{pid}"))).unwrap();
    std::fs::write(dir.join(format!(".out.prepare.{pid}/train.bin")), "partial").unwrap();
    std::fs::create_dir_all(dir.join(format!(".out.replaced.{pid}"))).unwrap();
    // Another live process's temporary folder is left alone.
    let live = dir.join(".out.prepare.1");
    std::fs::create_dir_all(&live).unwrap();
    run().unwrap();
    assert_eq!(entries(&out, "."), Vec::<String>::new());
    assert_eq!(entries(&dir, ".out."), vec![".out.prepare.1".to_string()]);

    // Anything but splits in the folder is refused, and kept.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let e = run().unwrap_err().to_string();
    assert!(
        e.contains("notes.txt") && e.contains("folder of its own"),
        "{e}"
    );
    assert!(out.join("notes.txt").is_file());
}
