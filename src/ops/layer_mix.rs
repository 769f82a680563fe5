//! `layer_mix`: hierarchical policy fusion (docs/ARCHITECTURE.md, "The backbone"). The fused hidden state is a
//! softmax-weighted sum of the layers' residual outputs, `sum_i softmax(w)_i * x_i`, with the
//! weights `w` learned; a plain Mamba is the case w = one-hot(last) in the limit.

use crate::error::{Result, shape_err};
use crate::tensor::{DType, Tensor, same_device};

const OP: &str = "layer_mix";

/// xs: [Layers, ...rest], logits: [Layers] -> [...rest], out = sum_i softmax(logits)_i * xs[i].
/// Backward (derivation in `cpu::layer_mix::layer_mix_backward`):
///   dxs_i = s_i * g,   dlogits_i = s_i * (<g, xs_i> - sum_j s_j <g, xs_j>).
pub fn layer_mix(xs: &Tensor, logits: &Tensor) -> Result<Tensor> {
    xs.expect_dtype(OP, "xs", DType::F32)?;
    logits.expect_dtype(OP, "logits", DType::F32)?;
    let Some((&layers, rest)) = xs.shape().split_first() else {
        return shape_err(
            OP,
            format!("xs must be [layers, ...], got {:?}", xs.shape()),
        );
    };
    if xs.elem_count() == 0 {
        return shape_err(OP, format!("xs {:?} has an empty dimension", xs.shape()));
    }
    if logits.shape() != [layers] {
        return shape_err(
            OP,
            format!(
                "logits {:?} must be [{layers}], one per layer of xs {:?}",
                logits.shape(),
                xs.shape()
            ),
        );
    }
    let m = xs.elem_count() / layers;
    let device = same_device(OP, &[xs, logits])?;
    let out = device
        .backend()
        .layer_mix(xs.storage(), logits.storage(), layers, m)?;
    let out = Tensor::from_storage(out, rest, DType::F32);
    let (xs2, l2) = (xs.clone(), logits.clone());
    Ok(out.with_grad_fn(OP, &[xs, logits], move |g| {
        let (dxs, dlogits) = layer_mix_backward(&xs2, &l2, g)?;
        Ok(vec![
            xs2.requires_grad().then_some(dxs),
            l2.requires_grad().then_some(dlogits),
        ])
    }))
}

fn layer_mix_backward(xs: &Tensor, logits: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    const BW: &str = "layer_mix_backward";
    let layers = logits.elem_count();
    let m = xs.elem_count() / layers;
    let device = same_device(BW, &[xs, logits, g])?;
    let (dxs, dl) = device.backend().layer_mix_backward(
        xs.storage(),
        logits.storage(),
        g.storage(),
        layers,
        m,
    )?;
    Ok((
        Tensor::from_storage(dxs, xs.shape(), DType::F32),
        Tensor::from_storage(dl, logits.shape(), DType::F32),
    ))
}
