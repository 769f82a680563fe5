//! The two reductions every selection rule needs, written once so all of them break ties and
//! round the same way.

/// The index of the first largest value (ties go to the lowest index, as `jnp.argmax`; the
/// evaluator lists a node's actions by prior, so a tie goes to the likelier token). NaN never
/// wins. Empty input gives 0.
pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] || xs[best].is_nan() {
            best = i;
        }
    }
    best
}

/// softmax(xs), shifted by the max so large logits do not overflow.
pub fn softmax(xs: &[f32]) -> Vec<f32> {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = xs.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|&e| e / sum).collect()
}
