//! Which arithmetic `matmul` uses: f32 throughout (the default), or f16 operands with f32
//! accumulation (mixed-precision training, `training.precision` f16). A scoped, per-thread switch
//! like `no_grad`, so the model code stays the same; each matmul records the mode it ran in and its
//! backward matmuls use the same one. And bf16 weights for inference (`to_bf16`), which `matmul`
//! recognises by their dtype.

use std::cell::Cell;

use crate::error::Result;
use crate::scoped_flag::{self, FlagGuard};
use crate::tensor::{DType, Tensor};

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

/// x rounded to bfloat16 storage (round to nearest even), for inference weights: `matmul` and
/// `linear` take a bf16 weight and compute in f32, reading half the bytes. No gradient.
pub fn to_bf16(x: &Tensor) -> Result<Tensor> {
    x.expect_dtype("to_bf16", "x", DType::F32)?;
    let out = x.device().backend().to_bf16(x.storage(), x.elem_count())?;
    Ok(Tensor::from_storage(out, x.shape(), DType::BF16))
}
