//! What the search asks of a model, and nothing more: expand a batch of leaves. The real
//! evaluator (the latent dynamics step, the backbone head's top-k, the critic heads) lives with
//! the model; the search only sees latents as opaque `f32` slices.

use crate::error::Result;

/// One leaf to create: the child of `parent` through its action `action` (token `token`).
#[derive(Clone, Copy, Debug)]
pub struct Expansion<'a> {
    /// The parent's latent, `latent_len` values, as the parent's own evaluation returned it.
    pub parent_latent: &'a [f32],
    /// The action's token id.
    pub token: u32,
    /// The action's index among the parent's k actions.
    pub action: usize,
    /// The parent's node index in the tree.
    pub parent: usize,
    /// The new node's depth (edges from the root): 1 for a child of the root.
    pub depth: usize,
}

/// A node as the model sees it: its latent, its k actions with prior logits, its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The node's latent; every node of a tree has the root's length.
    pub latent: Vec<f32>,
    /// The node's k action tokens (the policy's top-k at this latent), `top_k` of them.
    pub tokens: Vec<u32>,
    /// Their prior logits, in the same order (any offset: the search takes softmaxes).
    pub logits: Vec<f32>,
    /// The node's value: the critic heads' mean. Must be finite.
    pub value: f32,
    /// Per-layer values and confidences, carried in the tree for the trace; every node of a tree
    /// has the root's count.
    pub layer_values: Vec<f32>,
    pub layer_confidences: Vec<f32>,
    /// The reward on the edge into this node (0 when `None`); ignored for the root.
    pub reward: Option<f32>,
}

/// Expands leaves. The search calls it once per wave with every new leaf of the wave, and
/// expects one `Evaluation` per request, in order.
pub trait LeafEvaluator {
    fn evaluate(&mut self, requests: &[Expansion<'_>]) -> Result<Vec<Evaluation>>;
}
