//! How much a search with the exact model could gain on path-star: which arm the model's own
//! likelihood prefers. Every complete path of the graph (the source, then one arm to its leaf) is
//! scored by the model, teacher-forced after the prompt; the right one ends at the goal.
//!
//! Three choices are read off: the **first node** (which arm the model's next-token probability
//! prefers at the one step that needs lookahead: what greedy decoding does); the **whole path**
//! (which of the graph's complete paths it finds most likely); and **lookahead** (each first
//! node forced, the rest decoded greedily to EOS, the answers compared by the model's
//! likelihood: what a search that reaches the end of every arm with the exact model, valued by
//! the model's own log-likelihood, would answer). If lookahead answers far more problems than the
//! first node picks right, the model holds the knowledge and a search could use it; if not, no
//! planner that sees only this model can. The arms come from the prompt; the reference answer is
//! never read (the verifier judges the lookahead's answer afterwards, as in `eval`).

use crate::data::Tokenizer;
use crate::error::{Error, Result};
use crate::model::Backbone;
use crate::ops;
use crate::tensor::Tensor;

use super::answer::{completion_text, prompt_ids};
use super::pathstar::{parse_path, parse_prompt, path_text, verify};
use crate::generate::{GenerateOptions, SamplingConfig, Session, generate};

/// The model's scores of one problem's arms.
#[derive(Clone, Debug, PartialEq)]
pub struct ArmScores {
    /// The arm that ends at the goal.
    pub right: usize,
    /// Log-probability of each arm's first node after `s,`.
    pub first_node: Vec<f64>,
    /// Log-probability of each arm's whole answer `s,a1,...,leaf` and its EOS.
    pub path: Vec<f64>,
    /// Log-probability of the answer `s,a1` + the model's greedy continuation, per arm.
    pub lookahead: Vec<f64>,
    /// Whether that answer is right (the verifier's verdict).
    pub lookahead_correct: Vec<bool>,
    /// Whether that answer follows the arm to its last node but one and then writes the goal
    /// (for a wrong arm: a path that looks like the right one but for its last, missing, edge).
    pub lookahead_arm_then_goal: Vec<bool>,
}

impl ArmScores {
    /// Whether the right arm alone has the highest score (a tie counts as wrong).
    fn picks_right(scores: &[f64], right: usize) -> bool {
        scores
            .iter()
            .enumerate()
            .all(|(i, &s)| i == right || s < scores[right])
    }

    pub fn first_node_right(&self) -> bool {
        Self::picks_right(&self.first_node, self.right)
    }

    pub fn path_right(&self) -> bool {
        Self::picks_right(&self.path, self.right)
    }

    /// Whether the answer lookahead prefers (the first of equals) is right.
    pub fn lookahead_right(&self) -> bool {
        let best = (0..self.lookahead.len()).fold(0, |b, i| {
            if self.lookahead[i] > self.lookahead[b] {
                i
            } else {
                b
            }
        });
        self.lookahead_correct.get(best).copied().unwrap_or(false)
    }
}

/// The complete paths of a path-star prompt (source to each leaf, in the order of the source's
/// edges) and the index of the one ending at the goal; None when the prompt is not a star whose
/// goal ends one arm.
pub fn arms(prompt: &str) -> Option<(Vec<Vec<u32>>, usize)> {
    let (edges, s, g) = parse_prompt(prompt)?;
    let next = |u: u32| edges.iter().find(|e| e.0 == u).map(|e| e.1);
    let mut paths = Vec::new();
    for &(_, first) in edges.iter().filter(|e| e.0 == s) {
        let mut path = vec![s, first];
        while let Some(v) = next(*path.last()?) {
            if path.len() > edges.len() {
                return None; // a cycle
            }
            path.push(v);
        }
        paths.push(path);
    }
    let right = paths.iter().position(|p| p.last() == Some(&g))?;
    Some((paths, right))
}

/// The model's scores of the arms of `prompt` (a path-star prompt); lookahead's continuations
/// are at most `max_tokens` long.
pub fn arm_scores(
    model: &Backbone,
    tokenizer: &Tokenizer,
    prompt: &str,
    max_tokens: usize,
) -> Result<ArmScores> {
    let bad = |detail: String| Error::InvalidArgument {
        op: "arm_scores",
        detail,
    };
    let (paths, right) = arms(prompt)
        .ok_or_else(|| bad(format!("not a path-star prompt with a goal arm: {prompt}")))?;
    let eos = tokenizer
        .eos_id()
        .ok_or_else(|| bad("the tokenizer has no EOS id".into()))?;
    let context = prompt_ids(tokenizer, prompt)?;
    // The ids of `s,` (shared by every arm), after which the first node is chosen.
    let shared = tokenizer.encode(&format!("{},", paths[0][0]))?;
    let (mut first_node, mut path_scores) = (Vec::new(), Vec::new());
    let (mut lookahead, mut lookahead_correct) = (Vec::new(), Vec::new());
    let mut lookahead_arm_then_goal = Vec::new();
    let goal = paths[right][paths[right].len() - 1];
    let opts = GenerateOptions {
        max_new_tokens: max_tokens,
        sampling: SamplingConfig::greedy(),
        stop_on_eos: Some(eos),
        stop_strings: Vec::new(),
    };
    for path in &paths {
        let mut answer = tokenizer.encode(&path_text(path))?;
        answer.push(eos);
        if answer.len() <= shared.len() || answer[..shared.len()] != shared[..] {
            return Err(bad(format!(
                "the answer {:?} does not start with the ids of {:?}",
                path_text(path),
                format!("{},", path[0])
            )));
        }
        let log_probs = answer_log_probs(model, &context, &answer)?;
        first_node.push(log_probs[shared.len()]);
        path_scores.push(log_probs.iter().sum());

        // Lookahead: `s,a1` forced, then the model's own greedy answer.
        let mut forced = answer[..=shared.len()].to_vec();
        let start: Vec<u32> = context.iter().chain(&forced).copied().collect();
        let mut session = Session::new(model)?;
        forced.extend(generate(
            &mut session,
            &start,
            &opts,
            Some(tokenizer),
            |_| Ok(()),
        )?);
        lookahead.push(answer_log_probs(model, &context, &forced)?.iter().sum());
        let text = completion_text(tokenizer, &forced)?;
        lookahead_correct.push(text.as_deref().is_some_and(|t| verify(prompt, t)));
        let mut arm_then_goal = path[..path.len() - 1].to_vec();
        arm_then_goal.push(goal);
        lookahead_arm_then_goal.push(text.as_deref().and_then(parse_path) == Some(arm_then_goal));
    }
    Ok(ArmScores {
        right,
        first_node,
        path: path_scores,
        lookahead,
        lookahead_correct,
        lookahead_arm_then_goal,
    })
}

/// Log-probability of each id of `answer` after `context` and the answer's earlier ids, from one
/// parallel forward pass.
fn answer_log_probs(model: &Backbone, context: &[u32], answer: &[u32]) -> Result<Vec<f64>> {
    let ids: Vec<u32> = context.iter().chain(answer).copied().collect();
    let len = ids.len();
    let input = Tensor::from_u32(ids.clone(), &[1, len], &model.device())?;
    let log_probs = ops::log_softmax(&model.forward(&input)?)?.to_vec_f32()?;
    let vocab = log_probs.len() / len;
    Ok((context.len()..len)
        .map(|t| log_probs[(t - 1) * vocab + ids[t] as usize] as f64)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_follow_the_edges_from_the_source_to_each_leaf() {
        // s = 7; arms 7-3-9 and 7-12-4; goal 4.
        let (paths, right) = arms("3,9|7,12|7,3|12,4/7,4=").unwrap();
        assert_eq!(paths, vec![vec![7, 12, 4], vec![7, 3, 9]]);
        assert_eq!(right, 0);
        // A goal on no arm's end, a cycle, and text that is no prompt: None.
        assert!(arms("7,3|3,9/7,3=").is_none());
        assert!(arms("7,3|3,9|9,3/7,9=").is_none());
        assert!(arms("hello").is_none());
    }

    #[test]
    fn a_tie_is_not_a_right_pick() {
        let s = ArmScores {
            right: 1,
            first_node: vec![-1.0, -1.0],
            path: vec![-3.0, -2.0],
            lookahead: vec![-2.0, -2.0],
            lookahead_correct: vec![false, true],
            lookahead_arm_then_goal: vec![true, true],
        };
        assert!(!s.first_node_right());
        assert!(s.path_right());
        // Equal lookahead scores: the first answer, here the wrong one.
        assert!(!s.lookahead_right());
    }
}
