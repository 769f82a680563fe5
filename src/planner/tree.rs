//! The search tree as flat arrays, laid out as mctx's `Tree` (mctx/_src/tree.py): per node
//! `[N]`, per node and action `[N * k]`, root at index 0, nodes numbered in the order they were
//! created, so traces, tests and the viewer read it without walking pointers. Per-edge visits
//! and values are not stored apart: every node has one parent, so the edge into node c has c's
//! visits and `Q = reward[c] + discount * value_sum[c] / visits[c]` (mctx keeps both copies).

use super::evaluator::{Evaluation, Expansion};
use super::minmax::MinMaxStats;
use crate::error::{Error, Result};

/// "No node": the parent of the root, the child of an unexpanded edge.
pub const NONE: usize = usize::MAX;
/// The root's index.
pub const ROOT: usize = 0;

const OP: &str = "planner::Tree";

/// The whole tree. Fields are public for reading (traces, tests); only the search writes them.
#[derive(Clone, Debug)]
pub struct Tree {
    /// Actions per node, latent length, layers (from the root's evaluation).
    pub k: usize,
    pub latent_len: usize,
    pub layers: usize,
    /// gamma of the backup.
    pub discount: f32,
    /// Nodes in use (the arrays are allocated for the capacity, simulations + 1).
    pub len: usize,

    // ---- per node [capacity] -----------------------------------------------------------------
    /// Backups through the node, its own evaluation included. 0 only for a node created in the
    /// current wave and not yet backed up (a pending node).
    pub visits: Vec<u32>,
    /// Sum of the values backed up into the node (its own raw value first).
    pub value_sum: Vec<f32>,
    /// The evaluator's value at creation.
    pub raw_value: Vec<f32>,
    /// The reward on the edge into the node (0 for the root).
    pub reward: Vec<f32>,
    pub parent: Vec<usize>,
    /// The node's action index among its parent's k (NONE for the root).
    pub action: Vec<usize>,
    pub depth: Vec<usize>,
    /// Virtual visits of paths selected in the current wave and not yet backed up.
    pub virtual_visits: Vec<u32>,
    /// `[capacity * latent_len]`, opaque to the search.
    pub latents: Vec<f32>,
    /// `[capacity * layers]`, for the trace.
    pub layer_values: Vec<f32>,
    pub layer_confidences: Vec<f32>,

    // ---- per node and action [capacity * k] --------------------------------------------------
    pub tokens: Vec<u32>,
    pub logits: Vec<f32>,
    /// Child node of each action, NONE while unexpanded.
    pub children: Vec<usize>,

    /// The range of every Q backed up so far (PUCT's normalisation, the virtual loss value).
    pub min_max: MinMaxStats,
}

impl Tree {
    /// A tree of `capacity` nodes whose root is `root` (visited once, with its raw value, as
    /// mctx's `instantiate_tree_from_root`).
    pub fn new(root: Evaluation, capacity: usize, k: usize, discount: f32) -> Result<Tree> {
        let (latent_len, layers) = (root.latent.len(), root.layer_values.len());
        let mut tree = Tree {
            k,
            latent_len,
            layers,
            discount,
            len: 1,
            visits: vec![0; capacity],
            value_sum: vec![0.0; capacity],
            raw_value: vec![0.0; capacity],
            reward: vec![0.0; capacity],
            parent: vec![NONE; capacity],
            action: vec![NONE; capacity],
            depth: vec![0; capacity],
            virtual_visits: vec![0; capacity],
            latents: vec![0.0; capacity * latent_len],
            layer_values: vec![0.0; capacity * layers],
            layer_confidences: vec![0.0; capacity * layers],
            tokens: vec![0; capacity * k],
            logits: vec![0.0; capacity * k],
            children: vec![NONE; capacity * k],
            min_max: MinMaxStats::default(),
        };
        tree.fill(
            ROOT,
            Evaluation {
                reward: None,
                ..root
            },
        )?;
        tree.visits[ROOT] = 1;
        tree.value_sum[ROOT] = tree.raw_value[ROOT];
        Ok(tree)
    }

    /// The next free node as the child of `parent` through `action`: linked, not yet evaluated.
    pub fn allocate(&mut self, parent: usize, action: usize) -> usize {
        let node = self.len;
        assert!(node < self.visits.len(), "{OP}: tree capacity exceeded");
        self.len += 1;
        self.parent[node] = parent;
        self.action[node] = action;
        self.depth[node] = self.depth[parent] + 1;
        self.children[parent * self.k + action] = node;
        node
    }

    /// What the evaluator needs to create `node`.
    pub fn expansion(&self, node: usize) -> Expansion<'_> {
        let (parent, action) = (self.parent[node], self.action[node]);
        Expansion {
            parent_latent: self.latent(parent),
            token: self.tokens[parent * self.k + action],
            action,
            parent,
            depth: self.depth[node],
        }
    }

    /// Writes an evaluation into `node`, after checking it has the tree's sizes.
    pub fn fill(&mut self, node: usize, e: Evaluation) -> Result<()> {
        let sizes_ok = e.latent.len() == self.latent_len
            && e.tokens.len() == self.k
            && e.logits.len() == self.k
            && e.layer_values.len() == self.layers
            && e.layer_confidences.len() == self.layers;
        if !sizes_ok {
            return Err(Error::InvalidArgument {
                op: OP,
                detail: format!(
                    "node {node}: evaluation has latent {}, tokens {}, logits {}, layer values {}, \
                     confidences {}; the tree needs latent {}, k {}, layers {}",
                    e.latent.len(),
                    e.tokens.len(),
                    e.logits.len(),
                    e.layer_values.len(),
                    e.layer_confidences.len(),
                    self.latent_len,
                    self.k,
                    self.layers
                ),
            });
        }
        let reward = e.reward.unwrap_or(0.0);
        if !e.value.is_finite() || !reward.is_finite() || e.logits.iter().any(|l| !l.is_finite()) {
            return Err(Error::InvalidArgument {
                op: OP,
                detail: format!(
                    "node {node}: value {}, reward {reward} and logits {:?} must be finite",
                    e.value, e.logits
                ),
            });
        }
        let (l, k, n) = (self.latent_len, self.k, self.layers);
        self.latents[node * l..(node + 1) * l].copy_from_slice(&e.latent);
        self.tokens[node * k..(node + 1) * k].copy_from_slice(&e.tokens);
        self.logits[node * k..(node + 1) * k].copy_from_slice(&e.logits);
        self.layer_values[node * n..(node + 1) * n].copy_from_slice(&e.layer_values);
        self.layer_confidences[node * n..(node + 1) * n].copy_from_slice(&e.layer_confidences);
        self.raw_value[node] = e.value;
        self.reward[node] = reward;
        Ok(())
    }

    pub fn latent(&self, node: usize) -> &[f32] {
        &self.latents[node * self.latent_len..(node + 1) * self.latent_len]
    }

    pub fn node_logits(&self, node: usize) -> &[f32] {
        &self.logits[node * self.k..(node + 1) * self.k]
    }

    pub fn child(&self, node: usize, action: usize) -> usize {
        self.children[node * self.k + action]
    }

    /// The node's mean backed-up value (its raw value while only its own evaluation is in).
    pub fn mean_value(&self, node: usize) -> f32 {
        self.value_sum[node] / self.visits[node] as f32
    }

    /// The Q of the edge into `node`: reward + discount * mean value.
    pub fn q(&self, node: usize) -> f32 {
        self.reward[node] + self.discount * self.mean_value(node)
    }

    /// The value a virtual visit stands for: the lowest Q the tree has backed up (the root's raw
    /// value before the first backup), so a path under virtual loss looks as bad as the worst
    /// seen and later selections of the wave go elsewhere.
    pub fn virtual_loss_value(&self) -> f32 {
        if self.min_max.min.is_finite() {
            self.min_max.min
        } else {
            self.raw_value[ROOT]
        }
    }

    /// Visits of `node` as selection sees them: real plus virtual.
    pub fn selection_visits(&self, node: usize) -> u32 {
        self.visits[node] + self.virtual_visits[node]
    }

    /// Per action of `node`: (visits, Q) as selection sees them, virtual visits counted and each
    /// standing for [`Tree::virtual_loss_value`]. Q is 0.0 (unused) where visits are 0. Without
    /// virtual visits this is exactly (visits[c], q(c)), so a wave of one selects as the
    /// one-leaf loop does.
    pub fn edge_stats(&self, node: usize) -> (Vec<u32>, Vec<f32>) {
        let loss = self.virtual_loss_value();
        (0..self.k)
            .map(|a| match self.child(node, a) {
                NONE => (0, 0.0),
                c if self.virtual_visits[c] == 0 => (self.visits[c], self.q(c)),
                c => {
                    let (n, v) = (self.visits[c], self.virtual_visits[c]);
                    let real = if n > 0 { n as f32 * self.q(c) } else { 0.0 };
                    (n + v, (real + v as f32 * loss) / (n + v) as f32)
                }
            })
            .unzip()
    }

    /// Virtual loss on: a virtual visit on every node from `leaf` up to the root.
    pub fn add_virtual_loss(&mut self, leaf: usize) {
        self.for_path(leaf, |tree, node| tree.virtual_visits[node] += 1);
    }

    /// Virtual loss off, before the real backup of the same path.
    pub fn remove_virtual_loss(&mut self, leaf: usize) {
        self.for_path(leaf, |tree, node| tree.virtual_visits[node] -= 1);
    }

    fn for_path(&mut self, leaf: usize, mut f: impl FnMut(&mut Tree, usize)) {
        let mut node = leaf;
        while node != NONE {
            f(self, node);
            node = self.parent[node];
        }
    }

    /// Backs `leaf`'s raw value up to the root: each node on the path gains a visit and the
    /// discounted return from it, `G = reward + discount * G` per edge, and each edge's new Q
    /// joins the min-max range (mctx's `backward`, with sums instead of running means).
    pub fn backup(&mut self, leaf: usize) {
        let mut g = self.raw_value[leaf];
        let mut node = leaf;
        loop {
            self.visits[node] += 1;
            self.value_sum[node] += g;
            if node == ROOT {
                return;
            }
            self.min_max.update(self.q(node));
            g = self.reward[node] + self.discount * g;
            node = self.parent[node];
        }
    }
}
