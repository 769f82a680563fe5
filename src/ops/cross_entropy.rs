//! `log_softmax` over the last dimension and the language-model loss `cross_entropy`, whose
//! backward is fused ((softmax - onehot) * g / count in one kernel) rather than built from
//! log_softmax + gather, so a [tokens, vocab] gradient is written once.

use crate::backend::{Device, cpu, wgpu};
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
    let out = match x.device() {
        Device::Cpu => Tensor::from_cpu(
            cpu::cross_entropy::log_softmax(x.cpu_f32(OP, "x")?, v),
            x.shape(),
        ),
        Device::Wgpu(ctx) => Tensor::from_gpu(
            wgpu::cross_entropy::log_softmax(&ctx, x.gpu(OP, "x")?, rows, v)?,
            x.shape(),
            DType::F32,
        ),
    };
    let x2 = x.clone();
    Ok(out.with_grad_fn(OP, &[x], move |g| {
        const BW: &str = "log_softmax_backward";
        let dx = match same_device(BW, &[&x2, g])? {
            Device::Cpu => Tensor::from_cpu(
                cpu::cross_entropy::log_softmax_backward(
                    x2.cpu_f32(BW, "x")?,
                    g.cpu_f32(BW, "g")?,
                    v,
                ),
                x2.shape(),
            ),
            Device::Wgpu(ctx) => {
                let dx = wgpu::cross_entropy::log_softmax_backward(
                    &ctx,
                    x2.gpu(BW, "x")?,
                    g.gpu(BW, "g")?,
                    rows,
                    v,
                )?;
                Tensor::from_gpu(dx, x2.shape(), DType::F32)
            }
        };
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
    let loss = match device {
        Device::Cpu => {
            let l = cpu::cross_entropy::cross_entropy(
                logits.cpu_f32(OP, "logits")?,
                targets.cpu_u32(OP, "targets")?,
                ignore_index,
                v,
            );
            Tensor::from_cpu(vec![l], &[1])
        }
        Device::Wgpu(ctx) => {
            let l = wgpu::cross_entropy::cross_entropy(
                &ctx,
                logits.gpu(OP, "logits")?,
                targets.gpu(OP, "targets")?,
                ignore_index,
                rows,
                v,
                count,
            )?;
            Tensor::from_gpu(l, &[1], DType::F32)
        }
    };
    let (l2, t2) = (logits.clone(), targets.clone());
    Ok(loss.with_grad_fn(OP, &[logits, targets], move |g| {
        const BW: &str = "cross_entropy_backward";
        let dlogits = match same_device(BW, &[&l2, &t2, g])? {
            Device::Cpu => {
                let gv = g.cpu_f32(BW, "g")?[0];
                let d = cpu::cross_entropy::cross_entropy_backward(
                    l2.cpu_f32(BW, "logits")?,
                    t2.cpu_u32(BW, "targets")?,
                    ignore_index,
                    gv,
                    v,
                );
                Tensor::from_cpu(d, l2.shape())
            }
            Device::Wgpu(ctx) => {
                let d = wgpu::cross_entropy::cross_entropy_backward(
                    &ctx,
                    l2.gpu(BW, "logits")?,
                    t2.gpu(BW, "targets")?,
                    g.gpu(BW, "g")?,
                    ignore_index,
                    rows,
                    v,
                    count,
                )?;
                Tensor::from_gpu(d, l2.shape(), DType::F32)
            }
        };
        // Targets are integer class ids: no gradient.
        Ok(vec![Some(dlogits), None])
    }))
}
