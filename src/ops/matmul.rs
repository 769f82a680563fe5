//! `matmul` (C = op(A) op(B), a transpose taken as a flag, never a copy) and `linear` (PyTorch's
//! nn.Linear: y = x W^T + b over any leading dimensions), built on it. Under `f16_matmuls` the
//! operands are rounded to f16 and the sums kept in f32 (`matmul_f16` kernels).

use crate::backend::{MatmulDims, MatmulPrecision};
use crate::error::{Result, shape_err};
use crate::ops::{add, f16_matmuls_enabled, set_f16_matmuls};
use crate::tensor::{DType, Tensor, same_device};

/// a: [M, K] (or [K, M] when transpose_a), b: [K, N] (or [N, K] when transpose_b) -> [M, N]
///
/// Backward, with C = op(A) op(B) and G = dL/dC (the derivative of a product, each gradient
/// written in its operand's stored layout so it is again one matmul with other flags):
/// - dA = G op(B)^T, or stored transposed (transpose_a): op(B) G^T;
/// - dB = op(A)^T G, or stored transposed (transpose_b): G^T op(A).
///
/// Both backward matmuls use the precision the forward ran in.
pub fn matmul(a: &Tensor, b: &Tensor, transpose_a: bool, transpose_b: bool) -> Result<Tensor> {
    let op = "matmul";
    a.expect_dtype(op, "a", DType::F32)?;
    if b.dtype() == DType::BF16 {
        return matmul_bf16_weights(a, b, transpose_a, transpose_b);
    }
    b.expect_dtype(op, "b", DType::F32)?;
    let (sa, sb) = (a.shape(), b.shape());
    let flags = format!("transpose_a {transpose_a}, transpose_b {transpose_b}");
    if sa.len() != 2 || sb.len() != 2 {
        return shape_err(
            op,
            format!("a {sa:?} and b {sb:?} must both be 2-D ({flags})"),
        );
    }
    let (m, k) = if transpose_a {
        (sa[1], sa[0])
    } else {
        (sa[0], sa[1])
    };
    let (kb, n) = if transpose_b {
        (sb[1], sb[0])
    } else {
        (sb[0], sb[1])
    };
    if k != kb {
        return shape_err(
            op,
            format!("a {sa:?} and b {sb:?} have inner dimensions {k} and {kb} ({flags})"),
        );
    }
    let f16 = f16_matmuls_enabled();
    let device = same_device(op, &[a, b])?;
    let dims = MatmulDims {
        m,
        k,
        n,
        transpose_a,
        transpose_b,
    };
    let precision = if f16 {
        MatmulPrecision::F16Operands
    } else {
        MatmulPrecision::F32
    };
    let out = device
        .backend()
        .matmul(a.storage(), b.storage(), dims, precision)?;
    let out = Tensor::from_storage(out, &[m, n], DType::F32);
    let (a2, b2) = (a.clone(), b.clone());
    Ok(out.with_grad_fn(op, &[a, b], move |g| {
        let _precision = set_f16_matmuls(f16);
        let da = match (a2.requires_grad(), transpose_a) {
            (false, _) => None,
            (true, false) => Some(matmul(g, &b2, false, !transpose_b)?),
            (true, true) => Some(matmul(&b2, g, transpose_b, true)?),
        };
        let db = match (b2.requires_grad(), transpose_b) {
            (false, _) => None,
            (true, false) => Some(matmul(&a2, g, !transpose_a, false)?),
            (true, true) => Some(matmul(g, &a2, true, transpose_a)?),
        };
        Ok(vec![da, db])
    }))
}

/// `matmul` with bf16 weights b stored [N, K] (transpose_b, PyTorch's Linear layout): inference
/// only, so no tape node; recording a gradient through it is an error rather than a silent zero.
fn matmul_bf16_weights(
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<Tensor> {
    const OP: &str = "matmul_bf16_weights";
    let (sa, sb) = (a.shape(), b.shape());
    if transpose_a || !transpose_b || sa.len() != 2 || sb.len() != 2 || sa[1] != sb[1] {
        return shape_err(
            OP,
            format!(
                "bf16 weights take a [M, K] times b [N, K] transposed, got a {sa:?} (transpose_a {transpose_a}), b {sb:?} (transpose_b {transpose_b})"
            ),
        );
    }
    if crate::grad_mode::is_grad_enabled() && a.requires_grad() {
        return Err(crate::error::Error::InvalidArgument {
            op: OP,
            detail: "bf16 weights are for inference: run under no_grad".into(),
        });
    }
    let (m, k, n) = (sa[0], sa[1], sb[0]);
    let device = same_device(OP, &[a, b])?;
    let c = device
        .backend()
        .matmul_bf16_weights(a.storage(), b.storage(), m, k, n)?;
    Ok(Tensor::from_storage(c, &[m, n], DType::F32))
}

/// x: [..., K] (leading dims flattened into rows), weight: [N, K] (PyTorch nn.Linear layout), bias: Option<[N]> -> [..., N]
///
/// y = x W^T + b, as `matmul(x, W, false, true)` plus `add` (which repeats the bias over rows);
/// the tape differentiates the parts, so there is no backward here.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let op = "linear";
    x.expect_dtype(op, "x", DType::F32)?;
    if weight.dtype() != DType::BF16 {
        weight.expect_dtype(op, "weight", DType::F32)?;
    }
    let (sx, sw) = (x.shape(), weight.shape());
    let bias_shape = bias.map(|t| t.shape().to_vec());
    if sx.is_empty() || sw.len() != 2 || sx[sx.len() - 1] != sw[1] {
        return shape_err(
            op,
            format!("x {sx:?} must be [..., K] for weight {sw:?} = [N, K] (bias {bias_shape:?})"),
        );
    }
    let (n, k) = (sw[0], sw[1]);
    if let Some(bs) = &bias_shape
        && bs[..] != [n]
    {
        return shape_err(
            op,
            format!("bias {bs:?} must be [{n}] for weight {sw:?} (x {sx:?})"),
        );
    }
    let rows: usize = sx[..sx.len() - 1].iter().product();
    let x2d = if sx.len() == 2 {
        x.clone()
    } else {
        x.reshape(&[rows, k])?
    };
    let mut y = matmul(&x2d, weight, false, true)?;
    if let Some(b) = bias {
        y = add(&y, b)?;
    }
    let mut out_shape = sx[..sx.len() - 1].to_vec();
    out_shape.push(n);
    if out_shape.len() == 2 {
        Ok(y)
    } else {
        y.reshape(&out_shape)
    }
}
