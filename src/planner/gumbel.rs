//! Gumbel MuZero (Danihelka et al., "Policy improvement by planning with Gumbel", ICLR 2022), as
//! mctx's `gumbel_muzero_policy`: at the root, Gumbel-top-m sampling without replacement and
//! sequential halving over the m considered actions; at interior nodes the deterministic
//! selection whose visit frequencies follow the improved policy; the improved policy
//! `softmax(logits + sigma(completed q))` and the chosen action as the output.
//!
//! Completed Q (mctx `qtransform_completed_by_mix_value`): a visited action keeps its Q, an
//! unvisited one takes the mixed value v_mix (paper, Appendix D); the completed values are
//! rescaled to [0, 1] by their own min and max, then `sigma(q) = (c_visit + max_b N(b)) *
//! c_scale * q`. The set of m considered actions is never stored: with the schedule starting
//! at m zeros, the first m root simulations each take the best unvisited action by
//! `g + logits` (all unvisited share v_mix), which is the Gumbel-top-m.

use super::math::{argmax, softmax};
use super::tree::Tree;
use crate::rng::counter_gumbel;

/// The root's Gumbel noise: `g(a) = counter_gumbel(seed, stream, a)` for the k actions.
pub fn root_gumbel(seed: u32, stream: u32, k: usize) -> Vec<f32> {
    (0..k as u32)
        .map(|a| counter_gumbel(seed, stream, a))
        .collect()
}

/// v_mix = (v + sum_b N(b) * sum_{visited a} pi(a) q(a) / sum_{visited a} pi(a)) / (1 + sum_b N(b)),
/// with pi the prior (floored at the smallest positive f32, as mctx, so the weights never
/// vanish) and v the node's raw value.
pub fn mixed_value(raw_value: f32, logits: &[f32], visits: &[u32], q: &[f32]) -> f32 {
    let probs: Vec<f32> = softmax(logits)
        .iter()
        .map(|p| p.max(f32::MIN_POSITIVE))
        .collect();
    let total: u32 = visits.iter().sum();
    let visited = || (0..visits.len()).filter(|&a| visits[a] > 0);
    let prob_sum: f32 = visited().map(|a| probs[a]).sum();
    let weighted: f32 = visited().map(|a| probs[a] * q[a] / prob_sum).sum();
    (raw_value + total as f32 * weighted) / (total as f32 + 1.0)
}

/// sigma(completed q): unvisited actions take v_mix, then min-max rescaling over the k actions
/// (denominator at least 1e-8) and the visit scale `(c_visit + max_b N(b)) * c_scale`.
pub fn sigma_completed_q(
    raw_value: f32,
    logits: &[f32],
    visits: &[u32],
    q: &[f32],
    c_visit: f32,
    c_scale: f32,
) -> Vec<f32> {
    let v_mix = mixed_value(raw_value, logits, visits, q);
    let completed: Vec<f32> = visits
        .iter()
        .zip(q)
        .map(|(&n, &q)| if n > 0 { q } else { v_mix })
        .collect();
    let min = completed.iter().copied().fold(f32::INFINITY, f32::min);
    let max = completed.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let scale = (c_visit + *visits.iter().max().unwrap_or(&0) as f32) * c_scale;
    completed
        .iter()
        .map(|&q| scale * (q - min) / (max - min).max(1e-8))
        .collect()
}

/// mctx's `score_considered`: `max(-1e9, g + logits - max(logits) + sigma)` where the action's
/// visits equal `considered_visit`, minus infinity elsewhere.
pub fn score_considered(
    considered_visit: u32,
    gumbel: &[f32],
    logits: &[f32],
    sigma: &[f32],
    visits: &[u32],
) -> Vec<f32> {
    let max_logit = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (0..logits.len())
        .map(|a| {
            let score = (gumbel[a] + logits[a] - max_logit + sigma[a]).max(-1e9);
            if visits[a] == considered_visit {
                score
            } else {
                f32::NEG_INFINITY
            }
        })
        .collect()
}

/// The deterministic interior selection: `argmax(softmax(logits + sigma) - N(a) / (1 + sum N))`
/// (paper, Section 5), whose visit frequencies approach the improved policy.
pub fn interior_action(logits: &[f32], sigma: &[f32], visits: &[u32]) -> usize {
    let total: u32 = visits.iter().sum();
    let scores: Vec<f32> = improved_policy(logits, sigma)
        .iter()
        .zip(visits)
        .map(|(&p, &n)| p - n as f32 / (1.0 + total as f32))
        .collect();
    argmax(&scores)
}

/// The improved policy `softmax(logits + sigma(completed q))`.
pub fn improved_policy(logits: &[f32], sigma: &[f32]) -> Vec<f32> {
    let z: Vec<f32> = logits.iter().zip(sigma).map(|(l, s)| l + s).collect();
    softmax(&z)
}

/// The action Gumbel MuZero plays: among the most visited actions, the best by
/// `g + logits + sigma` (sequential halving's survivor).
pub fn chosen_action(gumbel: &[f32], logits: &[f32], sigma: &[f32], visits: &[u32]) -> usize {
    let most = *visits.iter().max().unwrap_or(&0);
    argmax(&score_considered(most, gumbel, logits, sigma, visits))
}

/// sigma(completed q) at a tree node, virtual visits counted.
pub fn node_sigma(tree: &Tree, node: usize, c_visit: f32, c_scale: f32) -> (Vec<u32>, Vec<f32>) {
    let (visits, q) = tree.edge_stats(node);
    let logits = tree.node_logits(node);
    let sigma = sigma_completed_q(tree.raw_value[node], logits, &visits, &q, c_visit, c_scale);
    (visits, sigma)
}

/// The root action of the simulation whose considered visit count is `considered_visit`.
pub fn select_root(
    tree: &Tree,
    gumbel: &[f32],
    considered_visit: u32,
    c_visit: f32,
    c_scale: f32,
) -> usize {
    let (visits, sigma) = node_sigma(tree, 0, c_visit, c_scale);
    let logits = tree.node_logits(0);
    argmax(&score_considered(
        considered_visit,
        gumbel,
        logits,
        &sigma,
        &visits,
    ))
}

/// The interior action at `node`.
pub fn select_interior(tree: &Tree, node: usize, c_visit: f32, c_scale: f32) -> usize {
    let (visits, sigma) = node_sigma(tree, node, c_visit, c_scale);
    interior_action(tree.node_logits(node), &sigma, &visits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: &[f32], want: &[f32]) {
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5),
            "{got:?} vs {want:?}"
        );
    }

    // A hand-worked root: priors 0.5, 0.3, 0.2, raw value 0.1, Gumbel 0.1, 1.0, -0.5.
    fn logits() -> [f32; 3] {
        [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()]
    }
    const G: [f32; 3] = [0.1, 1.0, -0.5];

    #[test]
    fn the_first_root_simulation_takes_the_best_gumbel_plus_logit() {
        // Nothing visited: every completed Q is v_mix = raw value, so sigma = 0 and the scores are
        // g + logits - max logit = 0.1, 1.0 + ln 0.6 = 0.4891744, -0.5 + ln 0.4 = -1.4162907.
        let sigma = sigma_completed_q(0.1, &logits(), &[0, 0, 0], &[0.0; 3], 50.0, 0.1);
        close(&sigma, &[0.0, 0.0, 0.0]);
        let scores = score_considered(0, &G, &logits(), &sigma, &[0, 0, 0]);
        close(&scores, &[0.1, 0.4891744, -1.4162907]);
        assert_eq!(argmax(&scores), 1);
    }

    #[test]
    fn completed_q_improves_the_policy_on_a_hand_worked_root() {
        // Visits 1, 1, 0 with Q 0.2, -0.4. v_mix = (0.1 + 2 * (0.5*0.2 + 0.3*(-0.4)) / 0.8) / 3
        // = 0.0166667; completed (0.2, -0.4, 0.0166667) rescaled over [-0.4, 0.2] is
        // (1, 0, 0.6944444); times (50 + 1) * 0.1: sigma = (5.1, 0, 3.5416667).
        let (visits, q) = ([1, 1, 0], [0.2, -0.4, 0.0]);
        assert!((mixed_value(0.1, &logits(), &visits, &q) - 0.0166667).abs() < 1e-6);
        let sigma = sigma_completed_q(0.1, &logits(), &visits, &q, 50.0, 0.1);
        close(&sigma, &[5.1, 0.0, 3.5416667]);
        // Improved policy: softmax(ln 0.5 + 5.1, ln 0.3, ln 0.2 + 3.5416667) (Python 3).
        close(
            &improved_policy(&logits(), &sigma),
            &[0.9192421, 0.0033626, 0.0773953],
        );
        // Root, considered visit 1 (schedule (2, 4) = 0, 0, 1, 1): a2 is out (0 visits); a0 scores
        // 0.1 + 5.1 = 5.2 against a1's 0.4891744 + 0, so Q overturns a1's better Gumbel draw.
        let scores = score_considered(1, &G, &logits(), &sigma, &visits);
        close(&scores[..2], &[5.2, 0.4891744]);
        assert_eq!(scores[2], f32::NEG_INFINITY);
        assert_eq!(chosen_action(&G, &logits(), &sigma, &visits), 0);
        // Interior: improved policy - N / (1 + 2) = (0.5859088, -0.3299707, 0.0773953): a0.
        assert_eq!(interior_action(&logits(), &sigma, &visits), 0);
        // Raw value 0 and a0 visited twice with Q 0: v_mix = 0, every completed Q is 0, sigma = 0
        // and the improved policy is the prior; minus (2/3, 0, 0) gives (-0.1667, 0.3, 0.2): a1.
        let sigma = sigma_completed_q(0.0, &logits(), &[2, 0, 0], &[0.0; 3], 50.0, 0.1);
        close(&sigma, &[0.0, 0.0, 0.0]);
        assert_eq!(interior_action(&logits(), &sigma, &[2, 0, 0]), 1);
    }
}
