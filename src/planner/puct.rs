//! PUCT selection in MuZero's form (Schrittwieser et al. 2020, Appendix B; mctx
//! `muzero_action_selection`):
//!
//! `score(a) = Q̂(a) + P(a) * sqrt(N) / (1 + n(a)) * (c1 + ln((N + c2 + 1) / c2))`
//!
//! with P the softmax of the node's prior logits over its k actions, n(a) the action's visits, N
//! the node's visits (its own evaluation included, as mctx counts it, so the first selection
//! at a fresh node already follows the prior), and Q̂ the action's Q min-max normalised over
//! the whole tree. An unvisited action's Q̂ is 0, the lowest value seen (MuZero's choice, and
//! mctx's `qtransform_by_parent_and_siblings`): exploring it must be paid for by its prior, so
//! the search stays on the tokens the policy believes in rather than trying every one of k.

use super::math::{argmax, softmax};
use super::tree::Tree;

/// The PUCT score of each action. `q_norm` is already in [0, 1] (0 for unvisited actions).
pub fn puct_scores(
    logits: &[f32],
    visits: &[u32],
    q_norm: &[f32],
    node_visits: u32,
    c1: f32,
    c2: f32,
) -> Vec<f32> {
    let n = node_visits as f32;
    let pb_c = c1 + ((n + c2 + 1.0) / c2).ln();
    softmax(logits)
        .iter()
        .zip(visits)
        .zip(q_norm)
        .map(|((&p, &v), &q)| q + p * n.sqrt() / (1.0 + v as f32) * pb_c)
        .collect()
}

/// The PUCT action at `node`, virtual visits counted (see [`Tree::edge_stats`]).
pub fn select(tree: &Tree, node: usize, c1: f32, c2: f32) -> usize {
    let (visits, q) = tree.edge_stats(node);
    let q_norm: Vec<f32> = visits
        .iter()
        .zip(&q)
        .map(|(&v, &q)| {
            if v > 0 {
                tree.min_max.normalize(q)
            } else {
                0.0
            }
        })
        .collect();
    let scores = puct_scores(
        tree.node_logits(node),
        &visits,
        &q_norm,
        tree.selection_visits(node),
        c1,
        c2,
    );
    argmax(&scores)
}

#[cfg(test)]
mod tests {
    use super::puct_scores;

    #[test]
    fn puct_picks_what_the_hand_worked_scores_say() {
        // Priors 0.5, 0.3, 0.2; visits 8, 1, 0; normalised Q 0.6, 0.35, 0 (unvisited); N = 10.
        // pb_c = 1.25 + ln((10 + 19652 + 1) / 19652) = 1.2505596, sqrt(10) = 3.1622777:
        //   a0: 0.6  + 0.5 * 3.1622777 / 9 * 1.2505596 = 0.8197009
        //   a1: 0.35 + 0.3 * 3.1622777 / 2 * 1.2505596 = 0.9431925
        //   a2: 0    + 0.2 * 3.1622777 / 1 * 1.2505596 = 0.7909233
        // a1 wins though a0 has both the best Q and the best prior.
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let scores = puct_scores(&logits, &[8, 1, 0], &[0.6, 0.35, 0.0], 10, 1.25, 19652.0);
        for (s, want) in scores.iter().zip([0.8197009, 0.9431925, 0.7909233]) {
            assert!((s - want).abs() < 1e-5, "{scores:?}");
        }
        assert_eq!(super::argmax(&scores), 1);
    }
}
