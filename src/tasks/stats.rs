//! The evidence study's statistics: a percentile bootstrap interval for an exact-match rate, the
//! exact McNemar test between two modes on the same problems (the discordant pairs are
//! Binomial(n, 1/2) under no difference), and the paired permutation test it generalises to
//! when a problem's score is a share over several seeds or models.

use crate::rng::Rng;

/// The rate of `hits` and its 95% percentile bootstrap interval from `resamples` resamples.
pub fn bootstrap_interval(hits: &[bool], resamples: usize, seed: u64) -> (f64, f64, f64) {
    let scores: Vec<f64> = hits.iter().map(|&h| if h { 1.0 } else { 0.0 }).collect();
    bootstrap_mean_interval(&scores, resamples, seed)
}

/// The mean of per-problem `scores` (a problem's share of hits over seeds or models) and its 95%
/// percentile bootstrap interval, resampling problems.
pub fn bootstrap_mean_interval(scores: &[f64], resamples: usize, seed: u64) -> (f64, f64, f64) {
    let n = scores.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = scores.iter().sum::<f64>() / n as f64;
    let mut rng = Rng::new(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            (0..n)
                .map(|_| scores[(rng.next_u64() % n as u64) as usize])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((means.len() - 1) as f64 * q).round() as usize];
    (mean, at(0.025), at(0.975))
}

/// Nonzero differences up to which the permutation test enumerates every sign pattern.
const EXACT_UP_TO: usize = 20;

/// The paired permutation (sign-flip) test of per-problem scores `a` against `b`: under no
/// difference each problem's difference is as likely negated, so the two-sided p-value is the
/// share of sign patterns whose |sum| reaches the observed one. Exact up to `EXACT_UP_TO`
/// nonzero differences, else `resamples` random patterns (p = (1 + hits) / (1 + resamples)).
/// On 0/1 scores it is the exact McNemar test. Returns the mean difference and the p-value.
pub fn paired_permutation(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    assert_eq!(a.len(), b.len(), "the test pairs the same problems");
    if a.is_empty() {
        return (f64::NAN, 1.0);
    }
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x - y)
        .filter(|v| *v != 0.0)
        .collect();
    let mean = d.iter().sum::<f64>() / a.len() as f64;
    let observed = d.iter().sum::<f64>().abs() - 1e-9;
    if d.is_empty() {
        return (0.0, 1.0);
    }
    let p = if d.len() <= EXACT_UP_TO {
        let patterns = 1u64 << d.len();
        let reach = (0..patterns)
            .filter(|bits| {
                let sum: f64 = d
                    .iter()
                    .enumerate()
                    .map(|(i, v)| if bits >> i & 1 == 1 { -v } else { *v })
                    .sum();
                sum.abs() >= observed
            })
            .count();
        reach as f64 / patterns as f64
    } else {
        let mut rng = Rng::new(seed);
        let reach = (0..resamples)
            .filter(|_| {
                let sum: f64 = d
                    .iter()
                    .map(|v| if rng.next_u64() & 1 == 1 { -v } else { *v })
                    .sum();
                sum.abs() >= observed
            })
            .count();
        (1 + reach) as f64 / (1 + resamples) as f64
    };
    (mean, p)
}

/// The exact McNemar test of `a` against `b` (paired by index): the counts of problems only `a`
/// solved and only `b` solved, and the two-sided p-value.
pub fn mcnemar(a: &[bool], b: &[bool]) -> (usize, usize, f64) {
    assert_eq!(a.len(), b.len(), "McNemar pairs the same problems");
    let only_a = a.iter().zip(b).filter(|(x, y)| **x && !**y).count();
    let only_b = a.iter().zip(b).filter(|(x, y)| !**x && **y).count();
    let n = only_a + only_b;
    if n == 0 {
        return (0, 0, 1.0);
    }
    // P(X <= min) for X ~ Binomial(n, 1/2), doubled and capped at 1, in log space for large n.
    let k = only_a.min(only_b);
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (only_a, only_b, (2.0 * tail).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_the_exact_binomial_by_hand() {
        // 2 problems only a solved, 8 only b: p = 2 (1 + 10 + 45) / 1024.
        let a: Vec<bool> = [vec![true; 2], vec![false; 8], vec![true; 5]].concat();
        let b: Vec<bool> = [vec![false; 2], vec![true; 8], vec![true; 5]].concat();
        let (x, y, p) = mcnemar(&a, &b);
        assert_eq!((x, y), (2, 8));
        assert!((p - 112.0 / 1024.0).abs() < 1e-12, "{p}");
        // Balanced discordance is no evidence; none at all neither.
        assert_eq!(mcnemar(&[true, false], &[false, true]).2, 1.0);
        assert_eq!(mcnemar(&[true, true], &[true, true]), (0, 0, 1.0));
        // 0 against 20: 2 / 2^20.
        let p = mcnemar(&[true; 20], &[false; 20]).2;
        assert!((p - 2.0 / 1_048_576.0).abs() < 1e-15, "{p}");
    }

    #[test]
    fn the_permutation_test_by_hand_and_as_mcnemar_on_hits() {
        // Differences +1, +1, +1, -0.5: of the 16 sign patterns, |sum| >= 2.5 for the
        // observed one, its negation, and the two that flip only the -0.5 (|sum| = 3.5).
        let (mean, p) = paired_permutation(&[1.0, 1.0, 1.0, 0.0], &[0.0, 0.0, 0.0, 0.5], 0, 0);
        assert!((mean - 2.5 / 4.0).abs() < 1e-12);
        assert!((p - 4.0 / 16.0).abs() < 1e-12, "{p}");
        // On hits it is McNemar exactly (2 against 8 discordant, plus ties).
        let a: Vec<bool> = [vec![true; 2], vec![false; 8], vec![true; 5]].concat();
        let b: Vec<bool> = [vec![false; 2], vec![true; 8], vec![true; 5]].concat();
        let f = |v: &[bool]| -> Vec<f64> { v.iter().map(|&h| h as u8 as f64).collect() };
        let (_, p) = paired_permutation(&f(&a), &f(&b), 0, 0);
        assert!((p - mcnemar(&a, &b).2).abs() < 1e-12, "{p}");
        // Many differences: sampled, and close to the exact binomial (30 against 10: 0.0022).
        let a: Vec<f64> = [vec![1.0; 30], vec![0.0; 10]].concat();
        let b: Vec<f64> = [vec![0.0; 30], vec![1.0; 10]].concat();
        let (_, p) = paired_permutation(&a, &b, 20_000, 5);
        let exact = mcnemar(
            &a.iter().map(|&v| v == 1.0).collect::<Vec<_>>(),
            &b.iter().map(|&v| v == 1.0).collect::<Vec<_>>(),
        )
        .2;
        assert!((p - exact).abs() < 0.002, "{p} vs {exact}");
        assert_eq!(paired_permutation(&a, &a, 100, 1), (0.0, 1.0));
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_rate_and_is_seeded() {
        assert_eq!(bootstrap_interval(&[true; 30], 500, 1), (1.0, 1.0, 1.0));
        let hits: Vec<bool> = (0..400).map(|i| i % 4 == 0).collect();
        let (m, lo, hi) = bootstrap_interval(&hits, 2000, 3);
        assert_eq!(m, 0.25);
        // The normal approximation's half-width: 1.96 sqrt(0.25 * 0.75 / 400) = 0.042.
        assert!(
            (m - lo - 0.042).abs() < 0.01 && (hi - m - 0.042).abs() < 0.01,
            "{lo} {hi}"
        );
        assert_eq!(bootstrap_interval(&hits, 2000, 3), (m, lo, hi));
    }
}
