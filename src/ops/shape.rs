//! Slicing and joining along one dimension: `narrow` (a copy of a slice, like PyTorch's
//! `narrow(...).contiguous()`) and `concat` (`torch.cat`). Layout stays dense row-major, so both
//! copy: a tensor [a.., n, b..] is viewed as [outer, n * inner] (outer = prod a.., inner =
//! prod b..), where a slice along the dimension is a block of whole columns. One block-copy
//! kernel serves both, and each is the other's backward. f32 and u32 (ids) tensors are both
//! accepted; only f32 carries gradients.

use crate::backend::{ColumnBlock, Storage};
use crate::error::{Error, Result, shape_err};
use crate::tensor::{DType, Tensor, same_device};

/// (outer, inner): the products of the dimensions before and after `dim`.
fn outer_inner(shape: &[usize], dim: usize) -> (usize, usize) {
    (
        shape[..dim].iter().product(),
        shape[dim + 1..].iter().product(),
    )
}

fn check_dim(op: &'static str, dim: usize, shape: &[usize]) -> Result<()> {
    if dim >= shape.len() {
        return shape_err(
            op,
            format!(
                "dim {dim} is out of range for shape {shape:?} (rank {})",
                shape.len()
            ),
        );
    }
    Ok(())
}

/// A copy of `x` restricted to indices start..start + len along `dim` (len may be 0).
/// d/dx: the output's gradient placed at the same indices of a zero tensor of x's shape.
pub fn narrow(x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
    let op = "narrow";
    let shape = x.shape().to_vec();
    check_dim(op, dim, &shape)?;
    let size = shape[dim];
    if start > size || len > size - start {
        return shape_err(
            op,
            format!("start {start} + len {len} exceeds size {size} of dim {dim} of x {shape:?}"),
        );
    }
    let (outer, inner) = outer_inner(&shape, dim);
    let block = ColumnBlock {
        outer,
        cols: size * inner,
        col: start * inner,
        width: len * inner,
    };
    let mut out_shape = shape.clone();
    out_shape[dim] = len;
    let out = x.device().backend().narrow(x.storage(), x.dtype(), block)?;
    let out = Tensor::from_storage(out, &out_shape, x.dtype());
    Ok(out.with_grad_fn(op, &[x], move |g| {
        g.expect_dtype("narrow_backward", "g", DType::F32)?;
        let dx = g.device().backend().narrow_backward(g.storage(), block)?;
        let dx = Tensor::from_storage(dx, &shape, DType::F32);
        Ok(vec![Some(dx)])
    }))
}

/// The tensors `xs` side by side along `dim`: all must have the same rank, dtype and sizes except
/// along `dim`. d/dxs[i]: the output's gradient narrowed to xs[i]'s indices.
pub fn concat(xs: &[&Tensor], dim: usize) -> Result<Tensor> {
    let op = "concat";
    let Some(first) = xs.first() else {
        return Err(Error::InvalidArgument {
            op,
            detail: "needs at least one tensor, got none".into(),
        });
    };
    let shapes: Vec<Vec<usize>> = xs.iter().map(|t| t.shape().to_vec()).collect();
    check_dim(op, dim, &shapes[0])?;
    for (i, t) in xs.iter().enumerate() {
        t.expect_dtype(op, "xs", first.dtype())?;
        let s = &shapes[i];
        let fits = s.len() == shapes[0].len()
            && s.iter()
                .zip(&shapes[0])
                .enumerate()
                .all(|(k, (a, b))| k == dim || a == b);
        if !fits {
            return shape_err(
                op,
                format!(
                    "xs[{i}] {s:?} does not match xs[0] {:?} outside dim {dim} (all shapes: {shapes:?})",
                    shapes[0]
                ),
            );
        }
    }
    let device = same_device(op, xs)?;
    let (outer, inner) = outer_inner(&shapes[0], dim);
    let sizes: Vec<usize> = shapes.iter().map(|s| s[dim]).collect();
    let mut out_shape = shapes[0].clone();
    out_shape[dim] = sizes.iter().sum();
    let parts: Vec<(&Storage, usize)> = xs
        .iter()
        .zip(&sizes)
        .map(|(t, &n)| (t.storage(), n * inner))
        .collect();
    let out = device.backend().concat(&parts, outer, first.dtype())?;
    let out = Tensor::from_storage(out, &out_shape, first.dtype());
    // Only whether each input needs a gradient is kept, not the inputs themselves.
    let wanted: Vec<bool> = xs.iter().map(|t| t.requires_grad()).collect();
    Ok(out.with_grad_fn(op, xs, move |g| {
        let mut start = 0;
        let mut grads = Vec::with_capacity(sizes.len());
        for (&n, &want) in sizes.iter().zip(&wanted) {
            grads.push(if want {
                Some(narrow(g, dim, start, n)?)
            } else {
                None
            });
            start += n;
        }
        Ok(grads)
    }))
}
