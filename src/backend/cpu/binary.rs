//! Elementwise binary ops. `a: [n]`, `b: [nb]` with `n % nb == 0`; `b` repeats over `a`'s leading
//! dimensions (a bias over rows, or a scalar when `nb == 1`).

use rayon::prelude::*;

/// Below this many elements the rayon split costs more than it saves.
pub(crate) const PAR_MIN: usize = 1 << 15;

pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    zip_broadcast(a, b, |x, y| x + y)
}

pub fn mul(a: &[f32], b: &[f32]) -> Vec<f32> {
    zip_broadcast(a, b, |x, y| x * y)
}

fn zip_broadcast(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let nb = b.len();
    if a.len() >= PAR_MIN && nb > 1 && nb < a.len() {
        let mut out = vec![0.0; a.len()];
        out.par_chunks_mut(nb)
            .zip(a.par_chunks(nb))
            .for_each(|(o, x)| {
                for i in 0..nb {
                    o[i] = f(x[i], b[i]);
                }
            });
        return out;
    }
    if a.len() >= PAR_MIN {
        return a
            .par_iter()
            .enumerate()
            .map(|(i, &x)| f(x, b[i % nb]))
            .collect();
    }
    a.iter()
        .enumerate()
        .map(|(i, &x)| f(x, b[i % nb]))
        .collect()
}
