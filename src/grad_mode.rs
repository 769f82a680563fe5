//! Whether ops record on the tape: a per-thread switch, on by default, turned off for a scope by
//! `no_grad` (inference, optimizer updates, backward itself). It sits below `tensor` and `ops`,
//! which read it; `autograd` (the backward pass) sits above them.

use std::cell::Cell;

use crate::scoped_flag::{self, FlagGuard};

thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(true) };
}

pub fn is_grad_enabled() -> bool {
    scoped_flag::get(&RECORDING)
}

/// Restores the previous recording mode when dropped.
pub type NoGradGuard = FlagGuard;

/// Turns recording off until the guard drops (inference, optimizer updates, backward itself).
pub fn no_grad() -> NoGradGuard {
    scoped_flag::set(&RECORDING, false)
}

/// Turns recording on until the guard drops (a checkpointed segment's recompute inside backward).
pub(crate) fn enable_grad() -> NoGradGuard {
    scoped_flag::set(&RECORDING, true)
}
