//! One plan from one snapshot: forward-project the snapshot's latents `lag` steps along the
//! policy's greedy tokens with the dynamics (generation will have moved on by the time the plan
//! lands), search from there, and package what generation needs: the improved policy over the
//! root's top-k (guidance) and the latent the dynamics predicts after the chosen token with the
//! critic's confidence there (injection).

use std::time::Instant;

use super::config::SearchConfig;
use super::evaluator::Evaluation;
use super::exact_evaluator::ExactEvaluator;
use super::latent_model::{LatentModel, NodeEval};
use super::leaf_evaluator::{LeafValue, ModelEvaluator};
use super::math::softmax;
use super::plan::{Plan, Snapshot};
use super::search::Search;
use super::tree::{NONE, ROOT};
use crate::error::Result;
use crate::trace::NodeSummary;

/// What expands a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamicsMode {
    /// The distilled GRU on latents (the CRSM).
    Learned,
    /// The real backbone step on a copy of the state per leaf (the ablation; leaf values are the
    /// critic's).
    Exact,
    /// No dynamics: every child keeps its parent's latent, so values cannot tell actions apart
    /// and the search returns the policy's prior, reshaped (the ablation of the learned model).
    Identity,
}

/// How the planner searches (besides the search's own settings).
#[derive(Clone, Debug, PartialEq)]
pub struct PlannerConfig {
    pub dynamics: DynamicsMode,
    pub search: SearchConfig,
    /// Steps between the snapshot and the token the plan is for, minus one: a plan from the
    /// snapshot after step t is for token t + lag + 1.
    pub lag: u64,
    pub leaf_value: LeafValue,
    /// Nodes kept in a plan's tree summary (the trace).
    pub trace_nodes: usize,
}

impl NodeEval {
    /// The search's view of a node at latent `s` (standard units).
    pub fn into_evaluation(self, s: Vec<f32>) -> Evaluation {
        Evaluation {
            latent: s,
            tokens: self.tokens,
            logits: self.log_probs,
            value: self.value,
            layer_values: self.layer_values,
            layer_confidences: self.confidences,
            reward: None,
        }
    }
}

/// Plans from `snapshot` (no gradients; runs in the caller's thread and rayon pool).
pub fn plan(model: &LatentModel, config: &PlannerConfig, snapshot: &Snapshot) -> Result<Plan> {
    let started = Instant::now();
    let zn = model.layers() * model.d_model();
    let mut z = snapshot.latents.clone();
    model.standardizer.apply(&mut z);
    // Fresh root noise for every plan: the stream is the step it is searched from.
    let search_config = SearchConfig {
        stream: snapshot.step as u32,
        ..config.search.clone()
    };
    let top_k = config.search.top_k;
    let mut assumed = Vec::with_capacity(config.lag as usize);
    let out = match config.dynamics {
        DynamicsMode::Learned | DynamicsMode::Identity => {
            let identity = config.dynamics == DynamicsMode::Identity;
            for _ in 0..config.lag {
                let greedy = model.evaluate(&z, 1)?.remove(0).tokens[0];
                if !identity {
                    z = model.step(&z, &[greedy])?;
                }
                assumed.push(greedy);
            }
            let root = model.evaluate(&z, top_k)?.remove(0).into_evaluation(z);
            let mut evaluator =
                ModelEvaluator::new(model, config.leaf_value, top_k, config.search.seed);
            if identity {
                evaluator = evaluator.identity_dynamics();
            }
            Search::new(root, search_config)?.run(&mut evaluator)?
        }
        DynamicsMode::Exact => {
            let mut evaluator = ExactEvaluator::new(model, top_k);
            let mut packed = evaluator.pack(&z, &snapshot.state)?;
            for _ in 0..config.lag {
                let greedy = model.evaluate(&z, 1)?.remove(0).tokens[0];
                let (mut rows, next) = evaluator.step(&[&packed], &[greedy])?;
                (packed, z) = (rows.remove(0), next);
                assumed.push(greedy);
            }
            let root = evaluator.evaluations(vec![packed], &z)?.remove(0);
            Search::new(root, search_config)?.run(&mut evaluator)?
        }
    };
    let tree = &out.tree;
    let child = tree.child(ROOT, out.action);
    let (mut target, confidences) = if child != NONE {
        let layers = tree.layers;
        (
            tree.latent(child)[..zn].to_vec(),
            tree.layer_confidences[child * layers..][..layers].to_vec(),
        )
    } else {
        // Never expanded (a budget smaller than the root's actions): one dynamics step.
        let root = &tree.latent(ROOT)[..zn];
        let next = if config.dynamics == DynamicsMode::Identity {
            root.to_vec()
        } else {
            model.step(root, &[out.token])?
        };
        let conf = model.evaluate(&next, 1)?.remove(0).confidences;
        (next, conf)
    };
    model.standardizer.invert(&mut target);
    let nodes = out
        .summary(config.trace_nodes)
        .into_iter()
        .map(|n| NodeSummary {
            id: n.id as u32,
            parent: n.parent.map(|p| p as u32),
            token: n.token,
            visits: n.visits,
            value: n.value,
            prior: n.prior,
        })
        .collect();
    Ok(Plan {
        generation: snapshot.generation,
        from_step: snapshot.step,
        target_step: snapshot.step + config.lag + 1,
        tokens: out.tokens.clone(),
        policy: out.policy.clone(),
        prior: softmax(tree.node_logits(ROOT)),
        visits: out.visits.clone(),
        chosen: out.token,
        target_latent: target,
        confidences,
        value: out.value,
        simulations: config.search.simulations as u32,
        latency: started.elapsed(),
        nodes,
        assumed,
    })
}
