//! Sequential halving's visit schedule (Karnin et al. 2013), exactly as mctx's
//! `get_sequence_of_considered_visits`: simulation i at the root may only visit an action whose
//! visit count equals `schedule[i]`. The m considered actions each get
//! `max(1, floor(n / (ceil(log2 m) * m)))` visits per phase, then the count halves (never below
//! 2), until n simulations are scheduled.

/// The considered visit count of each of `simulations` root simulations.
pub fn considered_visits(max_considered: usize, simulations: usize) -> Vec<u32> {
    if max_considered <= 1 {
        return (0..simulations as u32).collect();
    }
    // ceil(log2 m) without floats: the smallest L with 2^L >= m.
    let log2max = usize::BITS - (max_considered - 1).leading_zeros();
    let mut sequence = Vec::with_capacity(simulations);
    let mut visits = vec![0u32; max_considered];
    let mut considered = max_considered;
    while sequence.len() < simulations {
        let extra = (simulations / (log2max as usize * considered)).max(1);
        for _ in 0..extra {
            sequence.extend_from_slice(&visits[..considered]);
            visits[..considered].iter_mut().for_each(|v| *v += 1);
        }
        considered = (considered / 2).max(2);
    }
    sequence.truncate(simulations);
    sequence
}

#[cfg(test)]
mod tests {
    use super::considered_visits;

    #[test]
    fn the_schedule_equals_mctx_for_small_budgets() {
        // From mctx's get_sequence_of_considered_visits (seq_halving.py), run in Python 3.
        assert_eq!(considered_visits(2, 4), [0, 0, 1, 1]);
        assert_eq!(considered_visits(4, 8), [0, 0, 0, 0, 1, 1, 2, 2]);
        assert_eq!(
            considered_visits(4, 16),
            [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        );
        let mut m16 = vec![0; 16];
        m16.extend([1; 8]);
        m16.extend([2, 2, 2, 2, 3, 3, 3, 3]);
        assert_eq!(considered_visits(16, 32), m16);
    }

    #[test]
    fn the_schedule_handles_one_action_and_non_powers_of_two() {
        // mctx: range(n) for m <= 1; for m = 3, ceil(log2 3) = 2 (Python 3 again).
        assert_eq!(considered_visits(1, 3), [0, 1, 2]);
        assert_eq!(considered_visits(3, 5), [0, 0, 0, 1, 1]);
        assert_eq!(
            considered_visits(8, 16),
            [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3]
        );
    }
}
