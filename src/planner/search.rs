//! The search loop, in waves (mctx/_src/search.py's simulate / expand / backward, W leaves at a
//! time). A wave:
//!
//! 1. selects W paths one after another, each from the root down to an unexpanded edge, and puts
//!    a virtual loss on each path as soon as it is chosen (a virtual visit on every node of it,
//!    valued at the lowest Q seen: see `Tree::edge_stats`), so the next path of the wave sees
//!    it as visited and worse, and spreads out;
//! 2. creates the new leaves (node indices in selection order) and asks the evaluator for all of
//!    them in one call;
//! 3. takes each path's virtual loss off and backs up its leaf's value, in selection order.
//!
//! A path ends early in two cases, and then backs up a value the tree already holds, without
//! asking the evaluator: at a node of depth `max_depth` (created and evaluated once, never
//! expanded: a later path that reaches it backs up its raw value again, where mctx would call
//! the model on the same edge again), and at a node created earlier in the same wave and not
//! yet evaluated (a collision: it backs up that node's value once the wave has it). So a wave
//! asks for at most W leaves, and every simulation adds exactly one visit at the root.
//!
//! With Gumbel, the root's considered-visit schedule is indexed by the root's visits so far,
//! virtual ones included, so the W paths of a wave take the next W entries of the schedule in
//! order, exactly as W consecutive one-leaf simulations would (the Q they see differs only by
//! the wave's pending leaves, which count as visited at the virtual loss value). With no virtual
//! visits the selection arithmetic is the one-leaf loop's, so a wave of W = 1 builds the same
//! tree bit for bit (tested).

use super::config::SearchConfig;
use super::evaluator::{Evaluation, LeafEvaluator};
use super::gumbel;
use super::halving::considered_visits;
use super::output::SearchOutput;
use super::puct;
use super::tree::{NONE, ROOT, Tree};
use crate::error::{Error, Result};

const OP: &str = "planner::search";

/// Where a selected path ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    /// A node this path created: it needs an evaluation.
    New(usize),
    /// A node the tree already has (depth limit, or a collision within the wave).
    Old(usize),
}

impl Leaf {
    fn node(self) -> usize {
        match self {
            Leaf::New(n) | Leaf::Old(n) => n,
        }
    }
}

/// One search from one root; run it with [`Search::run`] (waves) or step it wave by wave.
pub struct Search {
    config: SearchConfig,
    tree: Tree,
    /// The root's Gumbel noise and the considered-visit schedule (Gumbel only; empty for PUCT).
    gumbel: Vec<f32>,
    schedule: Vec<u32>,
    done: usize,
}

impl Search {
    /// A search whose root is `root` (the evaluation of the latent being planned from).
    pub fn new(root: Evaluation, config: SearchConfig) -> Result<Search> {
        config.validate()?;
        let k = config.top_k;
        let tree = Tree::new(root, config.simulations + 1, k, config.discount)?;
        let (gumbel, schedule) = if config.gumbel {
            (
                gumbel::root_gumbel(config.seed, config.stream, k),
                considered_visits(config.num_considered(), config.simulations),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Search {
            config,
            tree,
            gumbel,
            schedule,
            done: 0,
        })
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn config(&self) -> &SearchConfig {
        &self.config
    }

    /// Simulations run so far.
    pub fn simulations_done(&self) -> usize {
        self.done
    }

    /// Every simulation, `config.wave` leaves at a time.
    pub fn run(mut self, evaluator: &mut impl LeafEvaluator) -> Result<SearchOutput> {
        while self.done < self.config.simulations {
            let w = self.config.wave.min(self.config.simulations - self.done);
            self.wave(evaluator, w)?;
        }
        Ok(self.into_output())
    }

    /// The plain loop, one simulation at a time with no virtual loss: the reference a wave of
    /// W = 1 must reproduce.
    pub fn run_one_leaf(mut self, evaluator: &mut impl LeafEvaluator) -> Result<SearchOutput> {
        while self.done < self.config.simulations {
            let leaf = self.select_path();
            if let Leaf::New(node) = leaf {
                let evaluation = evaluate(evaluator, &self.tree, &[node])?;
                self.tree
                    .fill(node, evaluation.into_iter().next().expect("checked count"))?;
            }
            self.tree.backup(leaf.node());
            self.done += 1;
        }
        Ok(self.into_output())
    }

    /// One wave of `w` simulations (at most the budget left): select under virtual loss, one
    /// evaluator call for the new leaves, back up. After an error the search holds pending
    /// nodes and virtual visits: drop it.
    pub fn wave(&mut self, evaluator: &mut impl LeafEvaluator, w: usize) -> Result<()> {
        let w = w.min(self.config.simulations - self.done);
        let mut leaves = Vec::with_capacity(w);
        for _ in 0..w {
            let leaf = self.select_path();
            self.tree.add_virtual_loss(leaf.node());
            leaves.push(leaf);
        }
        let new: Vec<usize> = leaves
            .iter()
            .filter_map(|l| match l {
                Leaf::New(n) => Some(*n),
                Leaf::Old(_) => None,
            })
            .collect();
        if !new.is_empty() {
            let evaluations = evaluate(evaluator, &self.tree, &new)?;
            for (node, evaluation) in new.into_iter().zip(evaluations) {
                self.tree.fill(node, evaluation)?;
            }
        }
        for leaf in leaves {
            self.tree.remove_virtual_loss(leaf.node());
            self.tree.backup(leaf.node());
        }
        self.done += w;
        Ok(())
    }

    /// The output of the search so far.
    pub fn into_output(self) -> SearchOutput {
        let t = &self.tree;
        let (k, c) = (t.k, &self.config);
        let logits = t.node_logits(ROOT).to_vec();
        let (visits, _) = t.edge_stats(ROOT);
        let (action, policy) = if c.gumbel {
            let (_, sigma) = gumbel::node_sigma(t, ROOT, c.c_visit, c.c_scale);
            (
                gumbel::chosen_action(&self.gumbel, &logits, &sigma, &visits),
                gumbel::improved_policy(&logits, &sigma),
            )
        } else {
            // PUCT plays the most visited action; its improved policy is the visit distribution.
            let total = visits.iter().sum::<u32>().max(1) as f32;
            let most = *visits.iter().max().unwrap_or(&0);
            (
                visits.iter().position(|&v| v == most).unwrap_or(0),
                visits.iter().map(|&v| v as f32 / total).collect(),
            )
        };
        let tokens = t.tokens[..k].to_vec();
        SearchOutput {
            action,
            token: tokens[action],
            tokens,
            policy,
            value: t.mean_value(ROOT),
            visits,
            tree: self.tree,
        }
    }

    /// Descends from the root to where this simulation ends, creating the new node if any.
    fn select_path(&mut self) -> Leaf {
        let mut node = ROOT;
        loop {
            if self.tree.depth[node] >= self.config.max_depth {
                return Leaf::Old(node);
            }
            let action = self.select_action(node);
            match self.tree.child(node, action) {
                NONE => return Leaf::New(self.tree.allocate(node, action)),
                child if self.tree.visits[child] == 0 => return Leaf::Old(child),
                child => node = child,
            }
        }
    }

    fn select_action(&self, node: usize) -> usize {
        let c = &self.config;
        match (c.gumbel, node == ROOT) {
            (false, _) => puct::select(&self.tree, node, c.c1, c.c2),
            (true, false) => gumbel::select_interior(&self.tree, node, c.c_visit, c.c_scale),
            (true, true) => {
                // The simulation's index is the root's visits so far, virtual ones included.
                let index = (self.tree.selection_visits(ROOT) - 1) as usize;
                let considered = self.schedule[index.min(self.schedule.len() - 1)];
                gumbel::select_root(&self.tree, &self.gumbel, considered, c.c_visit, c.c_scale)
            }
        }
    }
}

/// One evaluator call for `nodes`, checking it answers each request.
fn evaluate(
    evaluator: &mut impl LeafEvaluator,
    tree: &Tree,
    nodes: &[usize],
) -> Result<Vec<Evaluation>> {
    let requests: Vec<_> = nodes.iter().map(|&n| tree.expansion(n)).collect();
    let evaluations = evaluator.evaluate(&requests)?;
    if evaluations.len() != nodes.len() {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: format!(
                "the evaluator returned {} evaluations for {} requests",
                evaluations.len(),
                nodes.len()
            ),
        });
    }
    Ok(evaluations)
}
