//! Fault injection for the crash-safety tests (tests/crash_safe_checkpoints.rs, tests/data.rs):
//! every file-system step of a checkpoint save or a `prepare` (create, write, fsync, rename,
//! remove, directory sync) passes through `step`. A test arms it on its own thread to make the
//! i-th step fail, or to "kill the process" there: that step and every later one do nothing and
//! fail (cleanup included, as after a real `kill -9`), and a write dies half done.
//!
//! Not a test-only build flag: integration tests link the normal library. Unarmed, a step costs
//! one thread-local read, next to a system call.

use std::cell::RefCell;
use std::path::Path;

/// The kinds of file-system steps a save takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsOp {
    CreateDir,
    CreateFile,
    Write,
    Fsync,
    Rename,
    Remove,
    SyncDir,
}

/// What happens at the armed step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The step returns an error; later steps run normally.
    Fail,
    /// The process dies there: the step and every later one fail without touching the disk.
    Die,
}

/// What `step` tells its caller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Proceed,
    Fail,
    /// The first step of a death (a write may leave half its bytes behind).
    Die,
    /// Dead already: do nothing.
    Dead,
}

struct Plan {
    fault: Option<(usize, Fault)>,
    seen: Vec<(FsOp, String)>,
    dead: bool,
}

thread_local! {
    static PLAN: RefCell<Option<Plan>> = const { RefCell::new(None) };
}

/// Starts recording this thread's file-system steps, with `fault` at the step of that index
/// (0-based), or none to only count them.
pub fn arm(fault: Option<(usize, Fault)>) {
    PLAN.with(|p| {
        *p.borrow_mut() = Some(Plan {
            fault,
            seen: Vec::new(),
            dead: false,
        })
    });
}

/// Stops injecting (the "process" is alive again) and returns the steps seen since `arm`, each
/// with its path, the faulty one included.
pub fn disarm() -> Vec<(FsOp, String)> {
    PLAN.with(|p| p.borrow_mut().take().map(|p| p.seen).unwrap_or_default())
}

/// Called before each file-system step of a save.
pub(crate) fn step(op: FsOp, path: &Path) -> Verdict {
    PLAN.with(|p| {
        let mut plan = p.borrow_mut();
        let Some(plan) = plan.as_mut() else {
            return Verdict::Proceed;
        };
        if plan.dead {
            return Verdict::Dead;
        }
        let index = plan.seen.len();
        plan.seen.push((op, path.display().to_string()));
        match plan.fault {
            Some((at, Fault::Fail)) if at == index => Verdict::Fail,
            Some((at, Fault::Die)) if at == index => {
                plan.dead = true;
                Verdict::Die
            }
            _ => Verdict::Proceed,
        }
    })
}

/// `step` as an `io::Result`, for steps with nothing to do half-way.
pub(crate) fn check(op: FsOp, path: &Path) -> std::io::Result<()> {
    match step(op, path) {
        Verdict::Proceed => Ok(()),
        v => Err(injected(v)),
    }
}

pub(crate) fn injected(v: Verdict) -> std::io::Error {
    std::io::Error::other(format!("injected fault ({v:?})"))
}
