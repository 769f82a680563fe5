//! A per-thread on/off switch set for a scope: the one mechanism behind `autograd::no_grad` (tape
//! recording) and `ops::f16_matmuls` (matmul precision). The guard puts back the value it found
//! when it drops, so guards nest, and other threads are never affected.

use std::cell::Cell;
use std::thread::LocalKey;

/// A switch: declare it with `thread_local! { static NAME: Cell<bool> = const { Cell::new(..) }; }`.
pub type Flag = LocalKey<Cell<bool>>;

/// Restores the flag's previous value when dropped.
#[must_use = "the setting lasts only while the guard lives"]
pub struct FlagGuard {
    flag: &'static Flag,
    previous: bool,
}

impl Drop for FlagGuard {
    fn drop(&mut self) {
        self.flag.with(|f| f.set(self.previous));
    }
}

/// Sets `flag` to `on` on this thread until the returned guard drops.
pub fn set(flag: &'static Flag, on: bool) -> FlagGuard {
    FlagGuard {
        flag,
        previous: flag.with(|f| f.replace(on)),
    }
}

/// The flag's value on this thread.
pub fn get(flag: &'static Flag) -> bool {
    flag.with(|f| f.get())
}
