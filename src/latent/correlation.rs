//! Pearson and Spearman correlation, for the critic's held-out report.

/// Pearson's r; NaN when either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len()) as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Spearman's rho: Pearson's r of the ranks, ties given their mean rank.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0;
        for &k in &order[i..=j] {
            r[k] = mean_rank;
        }
        i = j + 1;
    }
    r
}

/// A ranking's accuracy counted only inside groups: within each group, the share of (right,
/// wrong) pairs that `score` orders right above wrong, ties counting half; pairs whose `state`
/// keys are equal are left out (the same state cannot be told apart, whatever the score). One
/// `(group, accuracy, pairs)` per group with at least one pair, in order of first appearance. Answers to
/// one problem grouped by problem: whether a critic tells a better continuation from a worse one,
/// which a correlation over all problems, dominated by easy against hard, cannot say.
pub fn within_group_pair_accuracy(
    group: &[u64],
    state: &[u64],
    score: &[f64],
    right: &[bool],
) -> Vec<(u64, f64, usize)> {
    let mut order: Vec<u64> = Vec::new();
    let mut members: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    for (i, &g) in group.iter().enumerate() {
        members
            .entry(g)
            .or_insert_with(|| {
                order.push(g);
                Vec::new()
            })
            .push(i);
    }
    order
        .iter()
        .filter_map(|g| {
            let m = &members[g];
            let (mut wins, mut pairs) = (0.0, 0usize);
            for &a in m.iter().filter(|&&a| right[a]) {
                for &b in m.iter().filter(|&&b| !right[b] && state[b] != state[a]) {
                    pairs += 1;
                    wins += match score[a].total_cmp(&score[b]) {
                        std::cmp::Ordering::Greater => 1.0,
                        std::cmp::Ordering::Equal => 0.5,
                        std::cmp::Ordering::Less => 0.0,
                    };
                }
            }
            (pairs > 0).then(|| (*g, wins / pairs as f64, pairs))
        })
        .collect()
}
