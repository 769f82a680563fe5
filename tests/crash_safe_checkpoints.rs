//! Crash-safe checkpoint rotation (train/rotation.rs): a save fails, or the process is killed, at
//! every file-system step in turn (each create, write, fsync, rename, remove and directory sync,
//! via `crsm::io::fault`); the run is then resumed and must continue from the newest complete
//! checkpoint and end with exactly the weights and losses of an uninterrupted run. Also the double
//! crash that lost the run before: killed between the renames of one save, then again anywhere
//! in the next.

#[path = "support/scratch.rs"]
mod scratch;
use scratch::Scratch;

use std::path::{Path, PathBuf};

use crsm::Device;
use crsm::data::{BadLinePolicy, ValSource, prepare, train_bpe_on_texts};
use crsm::io::fault::{self, Fault, FsOp};
use crsm::train::lm_task::LmTask;
use crsm::train::{RunConfig, Silent, Trainer};

const CHECKPOINT_EVERY: usize = 2;

fn corpus(seed: usize) -> String {
    let words = [
        "the", "lady", "said", "that", "her", "sister", "was", "very", "happy", "at", "home",
    ];
    (0..400)
        .map(|i| words[(i * 7 + seed + i / 3) % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tokenizer and shards under `dir`, shared by every run of a test.
struct Data {
    dir: PathBuf,
    vocab: usize,
}

fn data(dir: &Path) -> Data {
    let tok = train_bpe_on_texts(std::iter::once(corpus(0)), 280).unwrap();
    tok.save(&dir.join("tokenizer.json")).unwrap();
    std::fs::write(dir.join("train.txt"), corpus(0)).unwrap();
    std::fs::write(dir.join("val.txt"), corpus(5)).unwrap();
    prepare(
        &dir.join("train.txt"),
        &dir.join("tokenizer.json"),
        &dir.join("data"),
        &ValSource::File(dir.join("val.txt")),
        BadLinePolicy::Fail,
    )
    .unwrap();
    Data {
        dir: dir.to_path_buf(),
        vocab: tok.vocab_size(),
    }
}

/// A tiny model writing to `out`, with a checkpoint every `CHECKPOINT_EVERY` steps and one
/// evaluation at the end (so a save's steps are the only file-system steps in between).
fn config(d: &Data, out: &Path, max_steps: usize) -> RunConfig {
    let json = serde_json::json!({
        "model": {"vocab_size": d.vocab, "hidden_size": 16, "num_hidden_layers": 1, "state_size": 4},
        "training": {
            "data": d.dir.join("data"), "tokenizer": d.dir.join("tokenizer.json"), "out_dir": out,
            "batch_size": 2, "seq_len": 16, "max_steps": max_steps, "lr": 0.01,
            "eval_every": 1000, "eval_tokens": 64, "checkpoint_every": CHECKPOINT_EVERY,
            "device": "cpu", "seed": 7
        }
    });
    RunConfig::from_json_str(&json.to_string(), "tiny").unwrap()
}

/// What must match bit for bit: every weight, and each step's loss and rate.
#[derive(Debug, PartialEq)]
struct Outcome {
    weights: Vec<Vec<u32>>,
    steps: Vec<(usize, u32, u32)>,
}

fn outcome(t: &Trainer<LmTask>) -> Outcome {
    Outcome {
        weights: t
            .task
            .model
            .parameters()
            .iter()
            .map(|p| {
                p.to_vec_f32()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect()
            })
            .collect(),
        steps: t
            .metrics
            .steps
            .iter()
            .map(|r| (r.step, r.loss.to_bits(), r.lr.to_bits()))
            .collect(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn resume(d: &Data, out: &Path, max_steps: usize) -> Trainer<LmTask> {
    Trainer::resume(config(d, out, max_steps), &Device::Cpu)
        .unwrap_or_else(|e| panic!("resuming {}: {e}", out.display()))
}

/// Runs from the checkpoint in `out` up to `stop_at` with `fault` armed; returns the file-system
/// steps it took and whether the run stopped with an error. (A failed directory sync is not an
/// error: it is best effort, as some file systems refuse it.)
fn run_with_fault(
    d: &Data,
    out: &Path,
    max_steps: usize,
    stop_at: usize,
    at: Option<(usize, Fault)>,
) -> (Vec<(FsOp, String)>, bool) {
    let mut t = resume(d, out, max_steps);
    fault::arm(at);
    let result = t.run(Some(stop_at), &mut Silent);
    let steps = fault::disarm();
    if at.is_none() {
        result.as_ref().unwrap();
    }
    (steps, result.is_err())
}

/// The index of the step after which the save's new checkpoint is complete: its manifest is in
/// place (or, for a protocol without one, it has been renamed to `checkpoint`).
fn commit_index(steps: &[(FsOp, String)]) -> usize {
    let renamed_to = |name: &str| {
        steps.iter().rposition(|(op, p)| {
            *op == FsOp::Rename && Path::new(p).file_name().is_some_and(|f| f == name)
        })
    };
    renamed_to("manifest.json")
        .or_else(|| renamed_to("checkpoint"))
        .expect("the save renames its checkpoint into place")
}

/// Resumes `out` after a fault at step `i` of a save of step `saved` (whose steps were `steps`;
/// `stopped`: the run ended with an error), checks the resumed step, and finishes the run.
fn finish_after_fault(
    d: &Data,
    out: &Path,
    max_steps: usize,
    (steps, stopped): (&[(FsOp, String)], bool),
    i: usize,
    (previous, saved): (usize, usize),
) -> Outcome {
    let expected = if !stopped || i > commit_index(steps) {
        saved
    } else {
        previous
    };
    let mut t = resume(d, out, max_steps);
    assert_eq!(
        t.state_step, expected,
        "fault at step {i} ({:?}) of the save of step {saved}: resumed at step {}",
        steps[i], t.state_step
    );
    t.run(None, &mut Silent).unwrap();
    outcome(&t)
}

/// The uninterrupted run, and a run stopped after its first checkpoint (the template each trial
/// starts from).
fn reference_and_template(d: &Data, root: &Path, max_steps: usize) -> (Outcome, PathBuf) {
    let mut whole = Trainer::new(config(d, &root.join("whole"), max_steps), &Device::Cpu).unwrap();
    whole.run(None, &mut Silent).unwrap();
    let template = root.join("template");
    let mut first = Trainer::new(config(d, &template, max_steps), &Device::Cpu).unwrap();
    first.run(Some(CHECKPOINT_EVERY), &mut Silent).unwrap();
    (outcome(&whole), template)
}

#[test]
fn a_fault_at_every_step_of_a_save_resumes_from_the_newest_complete_checkpoint() {
    let root = Scratch::new("crash", "every-step");
    let d = data(&root);
    let max_steps = 6;
    let (want, template) = reference_and_template(&d, &root, max_steps);
    let (previous, saved) = (CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY);

    let trial = root.join("trial");
    copy_dir(&template, &trial);
    let (steps, _) = run_with_fault(&d, &trial, max_steps, saved, None);
    for op in [FsOp::Write, FsOp::Fsync, FsOp::Rename, FsOp::Remove] {
        assert!(steps.iter().any(|(o, _)| *o == op), "{op:?} in {steps:?}");
    }
    for mode in [Fault::Fail, Fault::Die] {
        for i in 0..steps.len() {
            copy_dir(&template, &trial);
            let (seen, stopped) = run_with_fault(&d, &trial, max_steps, saved, Some((i, mode)));
            assert!(
                stopped || steps[i].0 == FsOp::SyncDir,
                "{mode:?} at step {i}"
            );
            let ops = |s: &[(FsOp, String)]| s.iter().map(|(op, _)| *op).collect::<Vec<_>>();
            assert_eq!(
                ops(&seen[..=i]),
                ops(&steps[..=i]),
                "the save took other steps"
            );
            let got = finish_after_fault(
                &d,
                &trial,
                max_steps,
                (&steps, stopped),
                i,
                (previous, saved),
            );
            assert!(got == want, "{mode:?} at step {i} ({:?})", steps[i]);
        }
    }
}

/// The case that lost a run: killed after the old checkpoint was moved aside but before the new
/// one was moved in, then killed again at any step of the next save.
#[test]
fn two_crashes_in_a_row_never_lose_the_run() {
    let root = Scratch::new("crash", "double");
    let d = data(&root);
    let max_steps = 8;
    let (want, template) = reference_and_template(&d, &root, max_steps);
    let (first_save, second_save) = (2 * CHECKPOINT_EVERY, 3 * CHECKPOINT_EVERY);

    // Crash 1: at the rename of the new checkpoint into place.
    let trial = root.join("trial");
    copy_dir(&template, &trial);
    let (steps, _) = run_with_fault(&d, &trial, max_steps, first_save, None);
    let swap = steps
        .iter()
        .rposition(|(op, p)| *op == FsOp::Rename && p.ends_with("checkpoint"))
        .expect("the save renames its checkpoint into place");
    let crashed_once = root.join("crashed-once");
    copy_dir(&template, &crashed_once);
    run_with_fault(
        &d,
        &crashed_once,
        max_steps,
        first_save,
        Some((swap, Fault::Die)),
    );
    assert_eq!(
        resume(&d, &crashed_once, max_steps).state_step,
        first_save,
        "the complete checkpoint of step {first_save} was not taken"
    );

    // Crash 2: at every step of the next save.
    copy_dir(&crashed_once, &trial);
    let (steps, _) = run_with_fault(&d, &trial, max_steps, second_save, None);
    for i in 0..steps.len() {
        copy_dir(&crashed_once, &trial);
        let (_, stopped) =
            run_with_fault(&d, &trial, max_steps, second_save, Some((i, Fault::Die)));
        let got = finish_after_fault(
            &d,
            &trial,
            max_steps,
            (&steps, stopped),
            i,
            (first_save, second_save),
        );
        assert!(got == want, "second crash at step {i} ({:?})", steps[i]);
    }
}
