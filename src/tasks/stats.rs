//! The evidence study's statistics: a percentile bootstrap interval for an exact-match rate, and
//! the exact McNemar test between two modes on the same problems (the discordant pairs are
//! Binomial(n, 1/2) under no difference).

use crate::rng::Rng;

/// The rate of `hits` and its 95% percentile bootstrap interval from `resamples` resamples.
pub fn bootstrap_interval(hits: &[bool], resamples: usize, seed: u64) -> (f64, f64, f64) {
    let n = hits.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let rate = |count: usize| count as f64 / n as f64;
    let mean = rate(hits.iter().filter(|&&h| h).count());
    let mut rng = Rng::new(seed);
    let mut rates: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            rate(
                (0..n)
                    .filter(|_| hits[(rng.next_u64() % n as u64) as usize])
                    .count(),
            )
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let at = |q: f64| rates[((rates.len() - 1) as f64 * q).round() as usize];
    (mean, at(0.025), at(0.975))
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
