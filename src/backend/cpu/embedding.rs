//! Embedding lookup and its backward. ids: [n] (validated: all < v), table: [v, d].

use super::elementwise::for_each_piece;

/// out[t, :] = table[ids[t], :]. ids [n], table [v, d] -> [n, d].
pub fn embedding(ids: &[u32], table: &[f32], d: usize) -> Vec<f32> {
    let mut out = vec![0.0; ids.len() * d];
    if d == 0 {
        return out;
    }
    for_each_piece(&mut out, d, |t, o| {
        let id = ids[t] as usize;
        o.copy_from_slice(&table[id * d..(id + 1) * d])
    });
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
