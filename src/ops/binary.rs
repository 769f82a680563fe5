//! Elementwise `add` and `mul`. `b` may be smaller than `a` when its shape is a suffix of `a`'s
//! shape (a bias or gain repeated over rows) or a single element (a scalar).

use crate::backend::BinaryOp;
use crate::error::{Error, Result, shape_err};
use crate::ops::sum_to_shape;
use crate::tensor::{DType, Tensor, same_device};

/// Checks that `b` broadcasts over `a` (see the module doc).
pub(crate) fn check_broadcast(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    a.expect_dtype(op, "a", DType::F32)?;
    b.expect_dtype(op, "b", DType::F32)?;
    let (sa, sb) = (a.shape(), b.shape());
    let suffix = sb.len() <= sa.len() && sa[sa.len() - sb.len()..] == *sb;
    if !(suffix || b.elem_count() == 1) {
        return shape_err(
            op,
            format!(
                "b {sb:?} does not broadcast over a {sa:?} (b must be a suffix of a's shape or one element)"
            ),
        );
    }
    Ok(())
}

fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    check_broadcast(op.name(), a, b)?;
    let device = same_device(op.name(), &[a, b])?;
    let out =
        device
            .backend()
            .binary(op, a.storage(), b.storage(), a.elem_count(), b.elem_count())?;
    Ok(Tensor::from_storage(out, a.shape(), DType::F32))
}

/// `a + b`. d/da = 1; d/db = 1 summed over the broadcast rows.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = binary(BinaryOp::Add, a, b)?;
    let b_shape = b.shape().to_vec();
    Ok(out.with_grad_fn("add", &[a, b], move |g| {
        Ok(vec![Some(g.clone()), Some(sum_to_shape(g, &b_shape)?)])
    }))
}

/// `a * b`. d/da = g * b (broadcast); d/db = sum over rows of g * a.
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = binary(BinaryOp::Mul, a, b)?;
    let (a2, b2) = (a.clone(), b.clone());
    Ok(out.with_grad_fn("mul", &[a, b], move |g| {
        let da = if a2.requires_grad() {
            Some(mul(g, &b2)?)
        } else {
            None
        };
        let db = if b2.requires_grad() {
            Some(sum_to_shape(&mul(g, &a2)?, b2.shape())?)
        } else {
            None
        };
        Ok(vec![da, db])
    }))
}

/// `a - b`, built from primitives (no backward of its own).
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    add(a, &crate::ops::scale(b, -1.0)?)
}

/// acc += x (one shape), in place when `acc` holds the only handle to its storage and its backend
/// adds in place (the backward pass's gradient sums: no allocation, one pass fewer), else as
/// `add`, which leaves every other holder's values alone.
pub fn add_assign(acc: &mut Tensor, x: &Tensor) -> Result<()> {
    const OP: &str = "add_assign";
    if acc.shape() != x.shape() {
        return shape_err(
            OP,
            format!(
                "acc {:?} and x {:?} must have one shape",
                acc.shape(),
                x.shape()
            ),
        );
    }
    let device = same_device(OP, &[acc, x])?;
    let n = x.elem_count();
    if acc.dtype() == DType::F32
        && x.dtype() == DType::F32
        && let Some(storage) = acc.unique_storage_mut()
    {
        match device.backend().add_assign(storage, x.storage(), n) {
            Ok(()) => return Ok(()),
            Err(Error::Unsupported { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    *acc = add(acc, x)?;
    Ok(())
}
