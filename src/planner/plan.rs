//! What passes between generation and the planner thread: the snapshot generation posts after a
//! step, and the plan the planner posts back.

use std::time::Duration;

use crate::state::State;
use crate::trace::NodeSummary;

/// The state after `step` generated tokens (0: after the prompt) of generation `generation`.
pub struct Snapshot {
    pub generation: u64,
    pub step: u64,
    /// Every layer's latent after the last token read, [layers * D] raw units.
    pub latents: Vec<f32>,
    /// A copy of the recurrent state (for the `exact` dynamics).
    pub state: State,
    /// The last token read.
    pub last_token: u32,
}

/// A plan for generated token number `target_step`: its policy steers the choice of that token
/// (guidance), and its target latent the state after it (injection).
#[derive(Clone, Debug)]
pub struct Plan {
    pub generation: u64,
    /// The snapshot it was searched from.
    pub from_step: u64,
    pub target_step: u64,
    /// The root's candidate tokens, the improved policy over them and their visits.
    pub tokens: Vec<u32>,
    pub policy: Vec<f32>,
    /// The root's prior over the same tokens (the policy head at the root, renormalised over
    /// them): guidance moves the model by policy / prior, what the search added.
    pub prior: Vec<f32>,
    pub visits: Vec<u32>,
    /// The chosen token and the latent the dynamics predicts after it, [layers * D] raw units.
    pub chosen: u32,
    pub target_latent: Vec<f32>,
    /// The critic's per-layer confidence at the chosen child (what the gates read), and the
    /// root's value.
    pub confidences: Vec<f32>,
    pub value: f32,
    pub simulations: u32,
    pub latency: Duration,
    pub nodes: Vec<NodeSummary>,
    /// The tokens the forward projection assumed for steps from_step + 1 .. target_step - 1
    /// (the policy's greedy choices): the plan holds only if generation chose them.
    pub assumed: Vec<u32>,
}
