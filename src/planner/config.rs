//! The search's knobs, with the defaults the planner runs at and the rule that picks Gumbel for
//! small budgets. Validated once, when a search is built, so the loops never re-check them.

use crate::error::{Error, Result};

const OP: &str = "planner::SearchConfig";

/// How one search runs. `Default` is the planner's default: 16 simulations over the top 8 tokens,
/// so Gumbel (see [`gumbel_by_default`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchConfig {
    /// Simulations (leaf evaluations or revisits); the tree holds at most `simulations + 1` nodes.
    pub simulations: usize,
    /// Edges from the root to the deepest node; a node at this depth is evaluated once, never
    /// expanded (see `search.rs`). At least 1.
    pub max_depth: usize,
    /// Actions per node: the evaluator returns exactly this many tokens and logits per node.
    pub top_k: usize,
    /// Gumbel MuZero (sequential halving at the root) instead of PUCT everywhere.
    pub gumbel: bool,
    /// Gumbel: actions sampled without replacement at the root (mctx's
    /// `max_num_considered_actions`), capped at `top_k`.
    pub max_considered: usize,
    /// Leaves selected (under virtual loss) and evaluated in one evaluator call.
    pub wave: usize,
    /// gamma in `Q(s, a) = r + gamma * V(s')`. 1.0: the leaf value (the critic's estimate of what
    /// follows) already summarises the future and the interior rewards are 0, so discounting
    /// would only pull deep leaves' values toward 0, favouring deep paths when values are
    /// negative (log-likelihoods) and shallow ones when positive, with nothing to gain.
    pub discount: f32,
    /// The counter stream's seed and stream: the root Gumbel of action a is
    /// `counter_gumbel(seed, stream, a)`. A caller planning step t sets `stream = t`.
    pub seed: u32,
    pub stream: u32,
    /// PUCT's c1 and c2 (MuZero, Appendix B): 1.25 and 19652.
    pub c1: f32,
    pub c2: f32,
    /// Gumbel's sigma(q) = (c_visit + max_b N(b)) * c_scale * q (mctx: maxvisit_init 50,
    /// value_scale 0.1).
    pub c_visit: f32,
    pub c_scale: f32,
}

/// The default selection rule: Gumbel when `simulations <= 4 * top_k`. Below that budget PUCT
/// cannot visit most of the k actions even once, so its choice is mostly the prior's argmax;
/// sequential halving with completed Q still improves on the prior there (Danihelka et al. 2022
/// report learning with 2 simulations), while for large budgets PUCT is the well-tried choice.
pub fn gumbel_by_default(simulations: usize, top_k: usize) -> bool {
    simulations <= 4 * top_k
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig::for_budget(16, 8)
    }
}

impl SearchConfig {
    /// The defaults for a budget, with the selection rule of [`gumbel_by_default`] applied.
    pub fn for_budget(simulations: usize, top_k: usize) -> Self {
        SearchConfig {
            simulations,
            max_depth: 8,
            top_k,
            gumbel: gumbel_by_default(simulations, top_k),
            max_considered: 16,
            wave: 8,
            discount: 1.0,
            seed: 0,
            stream: 0,
            c1: 1.25,
            c2: 19652.0,
            c_visit: 50.0,
            c_scale: 0.1,
        }
    }

    /// Gumbel: how many root actions sequential halving considers.
    pub fn num_considered(&self) -> usize {
        self.max_considered.min(self.top_k)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Err(Error::InvalidArgument { op: OP, detail });
        if self.simulations == 0 || self.top_k == 0 || self.wave == 0 || self.max_depth == 0 {
            return bad(format!(
                "simulations ({}), top_k ({}), wave ({}) and max_depth ({}) must be at least 1",
                self.simulations, self.top_k, self.wave, self.max_depth
            ));
        }
        if self.gumbel && self.max_considered == 0 {
            return bad("max_considered must be at least 1 with gumbel".into());
        }
        let finite = [self.discount, self.c1, self.c2, self.c_visit, self.c_scale];
        if finite.iter().any(|x| !x.is_finite()) || !(0.0..=1.0).contains(&self.discount) {
            return bad(format!(
                "discount {} must lie in [0, 1] and c1, c2, c_visit, c_scale be finite",
                self.discount
            ));
        }
        if self.c2 <= 0.0 {
            return bad(format!("c2 must be positive, got {}", self.c2));
        }
        Ok(())
    }
}
