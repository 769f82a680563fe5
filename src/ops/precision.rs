//! Which arithmetic `matmul` uses: f32 throughout (the default), or f16 operands with f32
//! accumulation (mixed-precision training, `training.precision` f16). A scoped, per-thread switch
//! like `no_grad`, so the model code stays the same; each matmul records the mode it ran in and its
//! backward matmuls use the same one.

use std::cell::Cell;

use crate::scoped_flag::{self, FlagGuard};

thread_local! {
    static F16_OPERANDS: Cell<bool> = const { Cell::new(false) };
}

/// True while a `f16_matmuls` guard is alive on this thread.
pub fn f16_matmuls_enabled() -> bool {
    scoped_flag::get(&F16_OPERANDS)
}

/// Restores the previous mode when dropped.
pub type MatmulPrecisionGuard = FlagGuard;

/// Sets the mode (`true`: f16 operands) until the guard drops.
pub fn set_f16_matmuls(on: bool) -> MatmulPrecisionGuard {
    scoped_flag::set(&F16_OPERANDS, on)
}
/// f16 operands until the guard drops. On a wgpu device without shader-f16 matmul then returns an
/// error rather than quietly computing in f32; on the cpu it runs the reference twin (operands
/// rounded to f16, then the f32 product), which is exact in numerics but no faster.
pub fn f16_matmuls() -> MatmulPrecisionGuard {
    set_f16_matmuls(true)
}
