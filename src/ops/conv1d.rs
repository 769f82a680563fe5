//! `causal_conv1d`: the depthwise causal convolution of HF Mamba's mixer, channels last.
//! HF runs `nn.Conv1d(E, E, K, groups=E, padding=K-1)` on [B, E, L] and keeps the first L outputs;
//! here x is [B, L, C] (the layout the rest of the block uses) and the weight is HF's
//! `conv1d.weight [C, 1, K]` viewed as [C, K].

use crate::backend::ConvDims;
use crate::error::{Result, shape_err};
use crate::tensor::{DType, Tensor, same_device};

const OP: &str = "causal_conv1d";

fn check(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<ConvDims> {
    x.expect_dtype(OP, "x", DType::F32)?;
    weight.expect_dtype(OP, "weight", DType::F32)?;
    let &[b, l, c] = x.shape() else {
        return shape_err(
            OP,
            format!("x must be [batch, length, channels], got {:?}", x.shape()),
        );
    };
    if x.elem_count() == 0 {
        return shape_err(OP, format!("x {:?} has an empty dimension", x.shape()));
    }
    let k = match weight.shape() {
        &[wc, k] if wc == c && k > 0 => k,
        ws => {
            return shape_err(
                OP,
                format!(
                    "weight {ws:?} must be [channels, kernel] = [{c}, K >= 1] for x {:?} (view HF's [C, 1, K] as [C, K])",
                    x.shape()
                ),
            );
        }
    };
    if let Some(bias) = bias {
        bias.expect_dtype(OP, "bias", DType::F32)?;
        if bias.shape() != [c] {
            return shape_err(
                OP,
                format!(
                    "bias {:?} must be [{c}] for x {:?}",
                    bias.shape(),
                    x.shape()
                ),
            );
        }
    }
    Ok(ConvDims { b, l, c, k })
}

/// y[b, t, c] = bias[c] + sum_{j<K} weight[c, j] * x[b, t - (K-1) + j, c], zero before t = 0.
/// x: [B, L, C], weight: [C, K], bias: [C]. Gradients for x, weight and bias.
pub fn causal_conv1d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let dims = check(x, weight, bias)?;
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    let device = same_device(OP, &inputs)?;
    let bias_storage = bias.map(|b| b.storage());
    let out = device
        .backend()
        .causal_conv1d(x.storage(), weight.storage(), bias_storage, dims)?;
    let out = Tensor::from_storage(out, x.shape(), DType::F32);
    let (x2, w2, b2) = (x.clone(), weight.clone(), bias.cloned());
    Ok(out.with_grad_fn(OP, &inputs, move |g| {
        let dx = if x2.requires_grad() {
            Some(backward_x(g, &w2, dims)?)
        } else {
            None
        };
        let need_params = w2.requires_grad() || b2.as_ref().is_some_and(|b| b.requires_grad());
        let (dw, db) = if need_params {
            backward_params(&x2, g, dims).map(|(w, b)| (Some(w), Some(b)))?
        } else {
            (None, None)
        };
        let mut grads = vec![dx, dw];
        if b2.is_some() {
            grads.push(db);
        }
        Ok(grads)
    }))
}

/// dx [B, L, C] from the output's gradient g [B, L, C].
fn backward_x(g: &Tensor, weight: &Tensor, dims: ConvDims) -> Result<Tensor> {
    const BW: &str = "causal_conv1d_backward_x";
    let shape = [dims.b, dims.l, dims.c];
    let device = same_device(BW, &[g, weight])?;
    let dx = device
        .backend()
        .causal_conv1d_backward_x(g.storage(), weight.storage(), dims)?;
    Ok(Tensor::from_storage(dx, &shape, DType::F32))
}

/// (dweight [C, K], dbias [C]), reduced over batch and time.
fn backward_params(x: &Tensor, g: &Tensor, dims: ConvDims) -> Result<(Tensor, Tensor)> {
    const BW: &str = "causal_conv1d_backward_params";
    let (wshape, bshape) = ([dims.c, dims.k], [dims.c]);
    let device = same_device(BW, &[x, g])?;
    let (dw, db) =
        device
            .backend()
            .causal_conv1d_backward_params(x.storage(), g.storage(), dims)?;
    Ok((
        Tensor::from_storage(dw, &wshape, DType::F32),
        Tensor::from_storage(db, &bshape, DType::F32),
    ))
}
