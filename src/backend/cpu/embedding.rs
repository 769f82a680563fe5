//! Embedding lookup and its backward. ids: [n] (validated: all < v), table: [v, d].

use rayon::prelude::*;

use super::elementwise::PAR_MIN;

/// out[t, :] = table[ids[t], :]. ids [n], table [v, d] -> [n, d].
pub fn embedding(ids: &[u32], table: &[f32], d: usize) -> Vec<f32> {
    let mut out = vec![0.0; ids.len() * d];
    if d == 0 {
        return out;
    }
    let row = |(o, &id): (&mut [f32], &u32)| {
        o.copy_from_slice(&table[id as usize * d..(id as usize + 1) * d])
    };
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(d).zip(ids.par_iter()).for_each(row);
    } else {
        out.chunks_mut(d).zip(ids.iter()).for_each(row);
    }
    out
}

/// grad[v, :] = sum over tokens t with ids[t] = v of g[t, :], added in token order (repeated ids
/// accumulate). ids [n], g [n, d] -> [v, d].
pub fn embedding_backward(ids: &[u32], g: &[f32], v: usize, d: usize) -> Vec<f32> {
    let mut grad = vec![0.0; v * d];
    if d == 0 {
        return grad;
    }
    for (&id, gt) in ids.iter().zip(g.chunks_exact(d)) {
        let row = &mut grad[id as usize * d..(id as usize + 1) * d];
        for (a, &b) in row.iter_mut().zip(gt) {
            *a += b;
        }
    }
    grad
}
