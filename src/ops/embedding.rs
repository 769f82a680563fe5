//! `embedding`: rows of a table picked by token ids (PyTorch's `nn.functional.embedding`), with
//! the gradient for the table only (ids are integers).

use crate::backend::EmbeddingDims;
use crate::error::{Error, Result, shape_err};
use crate::tensor::{DType, Tensor, same_device};

/// ids: U32 of any shape [...], table: [V, D] f32 -> [..., D], out[..., :] = table[ids[...], :].
/// An id >= V is `Error::IdOutOfRange` (with its flat position in ids).
///
/// The ids are checked on the host. On wgpu that reads them back once (one sync point per call):
/// they are small (B*L u32s, next to B*L*D floats out) and the backward pass reuses the host copy
/// to plan its scatter-add, so it never reads them again.
///
/// d/dtable: the output's gradient rows added into the rows the ids name (repeated ids accumulate,
/// in token order on both backends).
pub fn embedding(ids: &Tensor, table: &Tensor) -> Result<Tensor> {
    let op = "embedding";
    ids.expect_dtype(op, "ids", DType::U32)?;
    table.expect_dtype(op, "table", DType::F32)?;
    if table.rank() != 2 {
        return shape_err(
            op,
            format!(
                "table must be [V, D], got {:?} (ids {:?})",
                table.shape(),
                ids.shape()
            ),
        );
    }
    let (v, d) = (table.dim(0), table.dim(1));
    let device = same_device(op, &[ids, table])?;
    let host_ids = ids.to_vec_u32()?;
    if let Some((position, &id)) = host_ids
        .iter()
        .enumerate()
        .find(|&(_, &id)| id as usize >= v)
    {
        return Err(Error::IdOutOfRange {
            op,
            id,
            position,
            limit: v,
        });
    }
    let n = host_ids.len();
    let mut out_shape = ids.shape().to_vec();
    out_shape.push(d);
    let dims = EmbeddingDims { n, v, d };
    let out = device
        .backend()
        .embedding(ids.storage(), &host_ids, table.storage(), dims)?;
    let out = Tensor::from_storage(out, &out_shape, DType::F32);
    Ok(out.with_grad_fn(op, &[ids, table], move |g| {
        g.expect_dtype("embedding_backward", "g", DType::F32)?;
        let dtable = g
            .device()
            .backend()
            .embedding_backward(&host_ids, g.storage(), dims)?;
        let dtable = Tensor::from_storage(dtable, &[v, d], DType::F32);
        Ok(vec![None, Some(dtable)])
    }))
}
