//! `log_softmax` over the last dimension and the language-model loss `cross_entropy`, whose
//! backward is fused ((softmax - onehot) * g / count in one kernel) rather than built from
//! log_softmax + gather, so a [tokens, vocab] gradient is written once.

use crate::backend::CrossEntropyDims;
use crate::error::{Error, Result, shape_err};
use crate::tensor::{DType, Tensor, same_device};

// ---- log_softmax ---------------------------------------------------------------------------------

/// log_softmax over the last dimension of x: [..., V], max-subtracted so large logits never
/// overflow: y_j = x_j - max - log sum_k exp(x_k - max). Backward: dx = g - softmax(x) * sum(g).
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "log_softmax";
    x.expect_dtype(OP, "x", DType::F32)?;
    let v = match x.shape().last() {
        Some(&v) if v > 0 => v,
        _ => {
            return shape_err(
                OP,
                format!("x {:?} needs a non-empty last dimension", x.shape()),
            );
        }
    };
    let rows = x.elem_count() / v;
    let out = x.device().backend().log_softmax(x.storage(), rows, v)?;
    let out = Tensor::from_storage(out, x.shape(), DType::F32);
    let x2 = x.clone();
    Ok(out.with_grad_fn(OP, &[x], move |g| {
        const BW: &str = "log_softmax_backward";
        let device = same_device(BW, &[&x2, g])?;
        g.expect_dtype(BW, "g", DType::F32)?;
        let dx = device
            .backend()
            .log_softmax_backward(x2.storage(), g.storage(), rows, v)?;
        let dx = Tensor::from_storage(dx, x2.shape(), DType::F32);
        Ok(vec![Some(dx)])
    }))
}

// ---- cross_entropy -------------------------------------------------------------------------------

const OP: &str = "cross_entropy";

/// The number of rows that count towards the mean, after checking every target is a valid class
/// or the ignore index. This runs on the host: for targets on a wgpu device it reads them back
/// (rows * 4 bytes, and it waits for the queued work that produced them). For an LM batch that is
/// a few KiB, and it is what lets a bad token id fail here with its position instead of reading
/// out of bounds in the kernel.
fn count_targets(targets: &Tensor, ignore_index: Option<u32>, v: usize) -> Result<usize> {
    let ids = targets.to_vec_u32()?;
    let mut count = 0;
    for (position, &id) in ids.iter().enumerate() {
        if Some(id) == ignore_index {
            continue;
        }
        if id as usize >= v {
            return Err(Error::IdOutOfRange {
                op: OP,
                id,
                position,
                limit: v,
            });
        }
        count += 1;
    }
    Ok(count)
}

/// Mean over the rows not ignored of -log_softmax(logits)[m, targets[m]], shape [1]; as PyTorch's
/// `F.cross_entropy(logits, targets, ignore_index=i, reduction="mean")`, except that when every row
/// is ignored the loss is 0 with zero gradients (PyTorch returns NaN there: a batch of padding
/// must not poison training). logits: [M, V] f32, targets: [M] u32. A target >= V that is not the
/// ignore index is `Error::IdOutOfRange`. Gradient for logits only.
pub fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    ignore_index: Option<u32>,
) -> Result<Tensor> {
    logits.expect_dtype(OP, "logits", DType::F32)?;
    targets.expect_dtype(OP, "targets", DType::U32)?;
    let &[rows, v] = logits.shape() else {
        return shape_err(
            OP,
            format!("logits must be [rows, vocab], got {:?}", logits.shape()),
        );
    };
    if v == 0 {
        return shape_err(OP, format!("logits {:?} has no classes", logits.shape()));
    }
    if targets.shape() != [rows] {
        return shape_err(
            OP,
            format!(
                "targets {:?} must be [{rows}], one per row of logits {:?}",
                targets.shape(),
                logits.shape()
            ),
        );
    }
    let device = same_device(OP, &[logits, targets])?;
    let count = count_targets(targets, ignore_index, v)?;
    let dims = CrossEntropyDims {
        rows,
        v,
        ignore_index,
        count,
    };
    let loss = device
        .backend()
        .cross_entropy(logits.storage(), targets.storage(), dims)?;
    let loss = Tensor::from_storage(loss, &[1], DType::F32);
    let (l2, t2) = (logits.clone(), targets.clone());
    Ok(loss.with_grad_fn(OP, &[logits, targets], move |g| {
        const BW: &str = "cross_entropy_backward";
        let device = same_device(BW, &[&l2, &t2, g])?;
        g.expect_dtype(BW, "g", DType::F32)?;
        let d = device.backend().cross_entropy_backward(
            l2.storage(),
            t2.storage(),
            g.storage(),
            dims,
        )?;
        let dlogits = Tensor::from_storage(d, l2.shape(), DType::F32);
        // Targets are integer class ids: no gradient.
        Ok(vec![Some(dlogits), None])
    }))
}
