//! The planner's search core on toy evaluators with known values: hand-worked trees, a wave of
//! one against the one-leaf loop, virtual loss, batching, the depth limit, and finding the best
//! action under PUCT and Gumbel.

use crsm::Result;
use crsm::planner::{Evaluation, Expansion, LeafEvaluator, ROOT, Search, SearchConfig, Tree};
use crsm::rng::counter_gumbel;

// ---- a toy game --------------------------------------------------------------------------------

/// A deterministic game tree: a node's latent is (depth, path code), its k actions are tokens
/// 100 + a, and `value` and `logits` are functions of the path (the actions from the root).
struct Game<V: Fn(&[usize]) -> f32, L: Fn(&[usize]) -> Vec<f32>> {
    k: usize,
    value: V,
    logits: L,
    /// Every call's requests, as (parent, action, depth).
    calls: Vec<Vec<(usize, usize, usize)>>,
}

impl<V: Fn(&[usize]) -> f32, L: Fn(&[usize]) -> Vec<f32>> Game<V, L> {
    fn new(k: usize, value: V, logits: L) -> Self {
        Game {
            k,
            value,
            logits,
            calls: Vec::new(),
        }
    }

    /// The path back from a latent's code (base k + 1 digits, 0 = none).
    fn path(&self, code: f32) -> Vec<usize> {
        let (mut code, mut path) = (code as usize, Vec::new());
        while code > 0 {
            path.push(code % (self.k + 1) - 1);
            code /= self.k + 1;
        }
        path.reverse();
        path
    }

    fn node(&self, path: &[usize]) -> Evaluation {
        let code = path.iter().fold(0, |c, &a| c * (self.k + 1) + a + 1);
        let value = (self.value)(path);
        Evaluation {
            latent: vec![path.len() as f32, code as f32],
            tokens: (0..self.k as u32).map(|a| 100 + a).collect(),
            logits: (self.logits)(path),
            value,
            layer_values: vec![value, value],
            layer_confidences: vec![1.0, 0.5],
            reward: None,
        }
    }

    fn root(&self) -> Evaluation {
        self.node(&[])
    }
}

impl<V: Fn(&[usize]) -> f32, L: Fn(&[usize]) -> Vec<f32>> LeafEvaluator for Game<V, L> {
    fn evaluate(&mut self, requests: &[Expansion<'_>]) -> Result<Vec<Evaluation>> {
        self.calls.push(
            requests
                .iter()
                .map(|r| (r.parent, r.action, r.depth))
                .collect(),
        );
        Ok(requests
            .iter()
            .map(|r| {
                assert_eq!(r.token, 100 + r.action as u32);
                let mut path = self.path(r.parent_latent[1]);
                assert_eq!(path.len() + 1, r.depth);
                path.push(r.action);
                self.node(&path)
            })
            .collect())
    }
}

fn flat(k: usize) -> impl Fn(&[usize]) -> Vec<f32> {
    move |_| vec![0.0; k]
}

/// A value that looks random but is a function of the path.
fn hashed(path: &[usize]) -> f32 {
    let code = path
        .iter()
        .fold(17u32, |c, &a| c.wrapping_mul(31).wrapping_add(a as u32 + 1));
    crsm::rng::counter_uniform(3, 9, code) * 2.0 - 1.0
}

fn config(simulations: usize, k: usize, gumbel: bool, wave: usize) -> SearchConfig {
    SearchConfig {
        gumbel,
        wave,
        seed: 5,
        stream: 11,
        ..SearchConfig::for_budget(simulations, k)
    }
}

// ---- hand-worked trees ------------------------------------------------------------------------

#[test]
fn puct_on_a_hand_built_tree_normalises_q_over_the_tree() {
    // Root priors 0.5, 0.3, 0.2, raw value 0. Child a0 (value 1.0) backed up twice, child a1
    // (value 3.0) once, a2 unvisited: root visits 4, min-max range [1, 3], so normalised Q is
    // (0, 1, 0). pb_c = 1.25 + ln(19657 / 19652) = 1.2502544, sqrt(4) = 2:
    //   a0: 0 + 0.5 * 2 / 3 * 1.2502544 = 0.4167515
    //   a1: 1 + 0.3 * 2 / 2 * 1.2502544 = 1.3750763
    //   a2: 0 + 0.2 * 2 / 1 * 1.2502544 = 0.5001018
    let logits = vec![0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
    let node = |value: f32| Evaluation {
        latent: vec![0.0],
        tokens: vec![7, 8, 9],
        logits: logits.clone(),
        value,
        layer_values: vec![],
        layer_confidences: vec![],
        reward: None,
    };
    let mut tree = Tree::new(node(0.0), 8, 3, 1.0).unwrap();
    for (action, value) in [(0, 1.0), (1, 3.0)] {
        let child = tree.allocate(ROOT, action);
        tree.fill(child, node(value)).unwrap();
        tree.backup(child);
    }
    tree.backup(tree.child(ROOT, 0));
    assert_eq!((tree.min_max.min, tree.min_max.max), (1.0, 3.0));
    assert_eq!(tree.visits[ROOT], 4);
    let (visits, q) = tree.edge_stats(ROOT);
    assert_eq!(visits, [2, 1, 0]);
    assert_eq!(&q[..2], &[1.0, 3.0]);
    let q_norm = [0.0, 1.0, 0.0];
    let scores = crsm::planner::puct::puct_scores(&logits, &visits, &q_norm, 4, 1.25, 19652.0);
    for (s, want) in scores.iter().zip([0.4167515, 1.3750763, 0.5001018]) {
        assert!((s - want).abs() < 1e-5, "{scores:?}");
    }
    assert_eq!(crsm::planner::puct::select(&tree, ROOT, 1.25, 19652.0), 1);
    // The root's value is the mean of everything backed up: (0 + 1 + 3 + 1) / 4.
    assert_eq!(tree.mean_value(ROOT), 1.25);
}

#[test]
fn backup_discounts_and_adds_rewards_per_edge() {
    // Root -> a (reward 1, value 2) -> b (reward 0.5, value 4), discount 0.5:
    // G at b = 4; at a: 0.5 + 0.5 * 4 = 2.5 joins a's sum; at the root: 1 + 0.5 * 2.5 = 2.25.
    let node = |value: f32, reward: f32| Evaluation {
        latent: vec![],
        tokens: vec![1],
        logits: vec![0.0],
        value,
        layer_values: vec![],
        layer_confidences: vec![],
        reward: Some(reward),
    };
    let mut tree = Tree::new(node(0.0, 9.0), 4, 1, 0.5).unwrap();
    assert_eq!(tree.reward[ROOT], 0.0, "the root's reward is ignored");
    let a = tree.allocate(ROOT, 0);
    tree.fill(a, node(2.0, 1.0)).unwrap();
    tree.backup(a);
    let b = tree.allocate(a, 0);
    tree.fill(b, node(4.0, 0.5)).unwrap();
    tree.backup(b);
    assert_eq!(tree.value_sum[b], 4.0);
    assert_eq!(tree.value_sum[a], 2.0 + 2.5);
    assert_eq!(tree.value_sum[ROOT], 0.0 + 2.0 + 2.25);
    assert_eq!(tree.depth[b], 2);
}

// ---- waves ------------------------------------------------------------------------------------

fn assert_same_tree(a: &Tree, b: &Tree) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(a.len, b.len);
    assert_eq!(a.visits, b.visits);
    assert_eq!(bits(&a.value_sum), bits(&b.value_sum));
    assert_eq!(bits(&a.raw_value), bits(&b.raw_value));
    assert_eq!(bits(&a.reward), bits(&b.reward));
    assert_eq!(a.parent, b.parent);
    assert_eq!(a.action, b.action);
    assert_eq!(a.depth, b.depth);
    assert_eq!(a.virtual_visits, b.virtual_visits);
    assert_eq!(bits(&a.latents), bits(&b.latents));
    assert_eq!(bits(&a.layer_values), bits(&b.layer_values));
    assert_eq!(bits(&a.layer_confidences), bits(&b.layer_confidences));
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(bits(&a.logits), bits(&b.logits));
    assert_eq!(a.children, b.children);
    assert_eq!(a.min_max.min.to_bits(), b.min_max.min.to_bits());
    assert_eq!(a.min_max.max.to_bits(), b.min_max.max.to_bits());
}

#[test]
fn a_wave_of_one_builds_the_one_leaf_loops_tree_bit_for_bit() {
    let uneven = |p: &[usize]| {
        (0..4)
            .map(|a| hashed(&[p, &[a]].concat()))
            .collect::<Vec<_>>()
    };
    for gumbel in [false, true] {
        // Depth 3 with 60 simulations over k = 4: depth-limited revisits happen too.
        let cfg = SearchConfig {
            max_depth: 3,
            ..config(60, 4, gumbel, 1)
        };
        let mut one = Game::new(4, hashed, uneven);
        let reference = Search::new(one.root(), cfg.clone())
            .unwrap()
            .run_one_leaf(&mut one)
            .unwrap();
        let mut waves = Game::new(4, hashed, uneven);
        let waved = Search::new(waves.root(), cfg)
            .unwrap()
            .run(&mut waves)
            .unwrap();
        assert_same_tree(&reference.tree, &waved.tree);
        assert_eq!(one.calls, waves.calls);
        assert!(
            reference.tree.len < 61,
            "some simulations revisited a depth-limited node"
        );
        assert_eq!(
            (reference.action, &reference.policy),
            (waved.action, &waved.policy)
        );
    }
}

#[test]
fn virtual_loss_spreads_a_wave_over_distinct_leaves() {
    // Equal priors and equal values: without virtual loss every path of the wave would take
    // action 0 (ties go to the lowest index).
    for gumbel in [false, true] {
        let mut game = Game::new(8, |_: &[usize]| 0.5, flat(8));
        let cfg = config(4, 8, gumbel, 4);
        Search::new(game.root(), cfg)
            .unwrap()
            .run(&mut game)
            .unwrap();
        assert_eq!(game.calls.len(), 1);
        let mut actions: Vec<_> = game.calls[0].iter().map(|&(p, a, _)| (p, a)).collect();
        actions.sort();
        actions.dedup();
        assert_eq!(actions.len(), 4, "gumbel {gumbel}: {:?}", game.calls[0]);
    }
}

#[test]
fn the_evaluator_is_called_once_per_wave_with_w_requests() {
    for gumbel in [false, true] {
        let mut game = Game::new(8, hashed, flat(8));
        let out = Search::new(game.root(), config(16, 8, gumbel, 4))
            .unwrap()
            .run(&mut game)
            .unwrap();
        let sizes: Vec<_> = game.calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 4, 4], "gumbel {gumbel}");
        assert_eq!(out.tree.len, 17);
        assert_eq!(out.visits.iter().sum::<u32>(), 16);
        assert!(out.tree.virtual_visits.iter().all(|&v| v == 0));
    }
}

#[test]
fn the_first_gumbel_wave_visits_the_top_m_by_gumbel_plus_logit() {
    // m = 4 of k = 8, one wave of 4: the schedule's first four entries are 0, so the wave takes
    // the four best g(a) + logit(a), g(a) = counter_gumbel(seed, stream, a).
    let logits: Vec<f32> = (0..8).map(|a| -0.3 * a as f32).collect();
    let prior = logits.clone();
    let mut game = Game::new(8, hashed, move |_: &[usize]| prior.clone());
    let cfg = SearchConfig {
        max_considered: 4,
        ..config(4, 8, true, 4)
    };
    Search::new(game.root(), cfg)
        .unwrap()
        .run(&mut game)
        .unwrap();
    let mut by_score: Vec<usize> = (0..8).collect();
    let score = |a: usize| counter_gumbel(5, 11, a as u32) + logits[a];
    by_score.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
    let mut want = by_score[..4].to_vec();
    want.sort();
    let mut got: Vec<usize> = game.calls[0].iter().map(|&(_, a, _)| a).collect();
    got.sort();
    assert_eq!(got, want);
}

// ---- finding the best action ------------------------------------------------------------------

#[test]
fn both_selections_find_the_best_arm_of_a_bandit_against_the_prior() {
    // Four arms, the prior prefers arm 0, arm 2 is worth most; a node keeps its first action's
    // value all the way down.
    let arms = [0.1, 0.2, 0.9, 0.3];
    let value = move |p: &[usize]| p.first().map_or(0.0, |&a| arms[a]);
    let prior = |_: &[usize]| vec![1.0, 0.5, 0.0, 0.0];
    for gumbel in [false, true] {
        let mut game = Game::new(4, value, prior);
        let out = Search::new(game.root(), config(64, 4, gumbel, 8))
            .unwrap()
            .run(&mut game)
            .unwrap();
        assert_eq!(
            (out.action, out.token),
            (2, 102),
            "gumbel {gumbel}: {:?}",
            out.visits
        );
        let best = out.policy.iter().copied().fold(0.0, f32::max);
        assert_eq!(out.policy[2], best, "gumbel {gumbel}: {:?}", out.policy);
        assert!((out.policy.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn the_depth_limit_is_respected_and_values_found_below_the_first_step() {
    // Values appear only at depth 2; action 1's subtree is best (0.8, 0.9, 0.7), the others
    // lie in [0.1, 0.3]. max_depth 2 with 48 simulations over k = 3: the 12 nodes below the root
    // are each evaluated once, every later path revisits a depth-2 node.
    let table = [[0.1, 0.3, 0.2], [0.8, 0.9, 0.7], [0.3, 0.1, 0.2]];
    let value = move |p: &[usize]| if p.len() >= 2 { table[p[0]][p[1]] } else { 0.0 };
    for gumbel in [false, true] {
        let mut game = Game::new(3, value, |_: &[usize]| vec![0.5, 0.0, 0.2]);
        let cfg = SearchConfig {
            max_depth: 2,
            ..config(48, 3, gumbel, 4)
        };
        let out = Search::new(game.root(), cfg)
            .unwrap()
            .run(&mut game)
            .unwrap();
        assert_eq!(out.action, 1, "gumbel {gumbel}: {:?}", out.visits);
        let t = &out.tree;
        assert!(t.depth[..t.len].iter().all(|&d| d <= 2));
        assert!(game.calls.iter().flatten().all(|&(_, _, d)| d <= 2));
        assert!(
            t.children[..t.len * 3]
                .iter()
                .enumerate()
                .all(|(i, &c)| { c == crsm::planner::NONE || t.depth[i / 3] < 2 })
        );
        let evaluated: usize = game.calls.iter().map(Vec::len).sum();
        assert_eq!(evaluated, t.len - 1);
        assert!(t.len <= 13 && t.visits[ROOT] == 49);
    }
}

// ---- output and errors ------------------------------------------------------------------------

#[test]
fn the_summary_is_a_connected_subtree_from_the_root() {
    let mut game = Game::new(4, hashed, flat(4));
    let out = Search::new(game.root(), config(20, 4, false, 4))
        .unwrap()
        .run(&mut game)
        .unwrap();
    let summary = out.summary(6);
    assert_eq!(summary.len(), 6);
    assert_eq!(
        (summary[0].parent, summary[0].token, summary[0].visits),
        (None, None, 21)
    );
    for node in &summary[1..] {
        let parent = node.parent.unwrap();
        assert!(parent < node.id);
        assert_eq!(node.prior, 0.25);
        assert_eq!(node.token, Some(100 + out.tree.action[node.id] as u32));
    }
    assert_eq!(out.summary(100).len(), out.tree.len);
}

#[test]
fn an_evaluation_of_the_wrong_size_is_an_error() {
    struct Short;
    impl LeafEvaluator for Short {
        fn evaluate(&mut self, requests: &[Expansion<'_>]) -> Result<Vec<Evaluation>> {
            Ok(requests
                .iter()
                .map(|_| Evaluation {
                    latent: vec![0.0; 2],
                    tokens: vec![1],
                    logits: vec![0.0],
                    value: 0.0,
                    layer_values: vec![0.0; 2],
                    layer_confidences: vec![0.0; 2],
                    reward: None,
                })
                .collect())
        }
    }
    let game = Game::new(4, hashed, flat(4));
    let err = Search::new(game.root(), config(8, 4, true, 4))
        .unwrap()
        .run(&mut Short);
    assert!(err.unwrap_err().to_string().contains("k 4"));
    let bad = SearchConfig {
        wave: 0,
        ..SearchConfig::default()
    };
    assert!(Search::new(game.root(), bad).is_err());
}

#[test]
fn gumbel_is_the_default_for_small_budgets() {
    let d = SearchConfig::default();
    assert_eq!((d.simulations, d.max_depth, d.top_k, d.wave), (16, 8, 8, 8));
    assert!(d.gumbel);
    assert!(!SearchConfig::for_budget(33, 8).gumbel);
    assert!(SearchConfig::for_budget(32, 8).gumbel);
}
