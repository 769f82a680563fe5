//! What a search returns: the action to play, the improved root policy (what guidance samples
//! from), the root's value and visits, and the tree itself for the trace.

use super::math::softmax;
use super::tree::{ROOT, Tree};

#[derive(Clone, Debug)]
pub struct SearchOutput {
    /// The chosen root action (index into `tokens`) and its token.
    pub action: usize,
    pub token: u32,
    /// The root's k tokens, in the evaluator's order.
    pub tokens: Vec<u32>,
    /// The improved policy over the root's k tokens: Gumbel's `softmax(logits + sigma(completed
    /// q))`, or PUCT's visit distribution.
    pub policy: Vec<f32>,
    /// The root's mean backed-up value.
    pub value: f32,
    /// Visits of each root action.
    pub visits: Vec<u32>,
    /// The whole tree, for the trace and the viewer.
    pub tree: Tree,
}

/// One node of the trace's tree summary.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSummary {
    pub id: usize,
    /// None for the root.
    pub parent: Option<usize>,
    /// The token on the edge into the node; None for the root.
    pub token: Option<u32>,
    pub visits: u32,
    /// Mean backed-up value.
    pub value: f32,
    /// The edge's prior probability under the parent's policy (1 for the root).
    pub prior: f32,
}

impl SearchOutput {
    /// Up to `cap` nodes in creation order: a parent is always created before its child, so the
    /// summary is a connected subtree from the root, and the first nodes are the ones the
    /// search reached first (the root's best candidates).
    pub fn summary(&self, cap: usize) -> Vec<NodeSummary> {
        let t = &self.tree;
        (0..t.len.min(cap))
            .map(|id| {
                let (parent, token, prior) = if id == ROOT {
                    (None, None, 1.0)
                } else {
                    let (p, a) = (t.parent[id], t.action[id]);
                    (
                        Some(p),
                        Some(t.tokens[p * t.k + a]),
                        softmax(t.node_logits(p))[a],
                    )
                };
                NodeSummary {
                    id,
                    parent,
                    token,
                    visits: t.visits[id],
                    value: t.mean_value(id),
                    prior,
                }
            })
            .collect()
    }
}
