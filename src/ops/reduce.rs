//! Reductions and their inverse: `sum`, `mean`, `sum_to_shape` (undoing a broadcast), `expand`
//! (making one), and `global_norm` for gradient clipping.

use crate::error::{Result, shape_err};
use crate::ops::{add, scale};
use crate::tensor::{DType, Tensor};

fn sum_impl(x: &Tensor, square: bool) -> Result<Tensor> {
    let op = if square { "sum_squares" } else { "sum" };
    x.expect_dtype(op, "x", DType::F32)?;
    let out = x
        .device()
        .backend()
        .sum(x.storage(), x.elem_count(), square)?;
    Ok(Tensor::from_storage(out, &[1], DType::F32))
}

/// The sum of all elements, shape [1]. d/dx = g repeated.
pub fn sum(x: &Tensor) -> Result<Tensor> {
    let shape = x.shape().to_vec();
    Ok(sum_impl(x, false)?.with_grad_fn("sum", &[x], move |g| Ok(vec![Some(expand(g, &shape)?)])))
}

/// The mean of all elements, shape [1].
pub fn mean(x: &Tensor) -> Result<Tensor> {
    scale(&sum(x)?, 1.0 / x.elem_count().max(1) as f32)
}

/// sqrt(sum over tensors of sum(t^2)), read back as one number (no gradient): for clipping.
pub fn global_norm(tensors: &[&Tensor]) -> Result<f32> {
    let _off = crate::grad_mode::no_grad();
    let mut total: Option<Tensor> = None;
    for t in tensors {
        let s = sum_impl(t, true)?;
        total = Some(match total {
            Some(acc) => add(&acc, &s)?,
            None => s,
        });
    }
    Ok(match total {
        Some(t) => t.scalar()?.sqrt(),
        None => 0.0,
    })
}

/// Sums `x` down to `shape`, which must be a suffix of x's shape or one element: the gradient of
/// a broadcast operand.
pub fn sum_to_shape(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    let n: usize = shape.iter().product();
    if n == 1 {
        return sum(x)?.reshape(shape);
    }
    let xs = x.shape();
    if shape.len() > xs.len() || xs[xs.len() - shape.len()..] != *shape {
        return shape_err(
            "sum_to_shape",
            format!("{shape:?} is not a suffix of {xs:?}"),
        );
    }
    let rows = x.elem_count() / n;
    x.expect_dtype("sum_to_shape", "x", DType::F32)?;
    let out = x.device().backend().sum_columns(x.storage(), rows, n)?;
    let out = Tensor::from_storage(out, shape, DType::F32);
    let full = xs.to_vec();
    Ok(out.with_grad_fn("sum_to_shape", &[x], move |g| {
        Ok(vec![Some(expand(g, &full)?)])
    }))
}

/// Repeats `x` over leading dimensions to `shape` (x's shape must be a suffix of it, or x one
/// element). d/dx = the gradient summed back down.
pub fn expand(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    x.expect_dtype("expand", "x", DType::F32)?;
    if x.shape() == shape {
        return Ok(x.clone());
    }
    let xs = x.shape();
    let suffix = xs.len() <= shape.len() && shape[shape.len() - xs.len()..] == *xs;
    if !(suffix || x.elem_count() == 1) {
        return shape_err("expand", format!("{xs:?} does not broadcast to {shape:?}"));
    }
    let n: usize = shape.iter().product();
    let out = x
        .device()
        .backend()
        .expand(x.storage(), x.elem_count(), n)?;
    let out = Tensor::from_storage(out, shape, DType::F32);
    let small = xs.to_vec();
    Ok(out.with_grad_fn("expand", &[x], move |g| {
        Ok(vec![Some(sum_to_shape(g, &small)?)])
    }))
}
