//! The trace's events (`docs/TRACE.md`): a header line, then one event per line, each an object
//! with an `"event"` tag.

use serde::{Deserialize, Serialize};

/// The schema's name and version, in the header line; a reader refuses another version.
pub const SCHEMA: &str = "crsm-trace";
pub const VERSION: u32 = 1;

/// The first line of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub schema: String,
    pub version: u32,
    /// The model folder, the deliberation mode (off | async | sync) and the settings it ran with.
    pub model: String,
    pub mode: String,
    pub settings: serde_json::Value,
    /// The prompt's ids and text (empty when no tokenizer).
    pub prompt_ids: Vec<u32>,
    pub prompt: String,
}

/// One node of a plan's search tree, as the viewer draws it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub id: u32,
    /// None at the root.
    pub parent: Option<u32>,
    /// The token that leads here from the parent (None at the root).
    pub token: Option<u32>,
    pub visits: u32,
    pub value: f32,
    pub prior: f32,
}

/// One of the root's actions in a plan: its token, the improved policy's probability, visits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RootChoice {
    pub token: u32,
    pub prob: f32,
    pub visits: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    Header(Header),
    /// A token generation chose at `step` (1 = the first generated token); `entropy` of the
    /// distribution it was drawn from (nats).
    Token {
        step: u64,
        id: u32,
        text: String,
        entropy: f32,
    },
    /// Generation posted the state after `step` tokens to the planner.
    SnapshotSent {
        generation: u64,
        step: u64,
    },
    /// The planner posted a plan for token position `target_step`, searched from the snapshot of
    /// `from_step`.
    PlanPosted {
        generation: u64,
        from_step: u64,
        target_step: u64,
        latency_ms: f32,
        simulations: u32,
        /// The root's value (critic heads' mean) and the chosen child's per-layer confidences.
        value: f32,
        confidences: Vec<f32>,
        chosen: u32,
        root_policy: Vec<RootChoice>,
        nodes: Vec<NodeSummary>,
    },
    /// A plan applied at its target step: per layer alpha, and the SSM state's norm before and
    /// after; `guided` when its policy steered the token choice.
    PlanApplied {
        target_step: u64,
        step: u64,
        alphas: Vec<f32>,
        norm_before: Vec<f32>,
        norm_after: Vec<f32>,
        guided: bool,
    },
    /// A plan that arrived `late` steps after its target, applied with alphas scaled by `factor`.
    PlanDecayed {
        target_step: u64,
        step: u64,
        late: u64,
        factor: f32,
        alphas: Vec<f32>,
        norm_before: Vec<f32>,
        norm_after: Vec<f32>,
    },
    /// A plan not applied: `reason` "late" (past `max_lag`), "superseded" (a newer due plan was
    /// applied) or "diverged" (generation chose other tokens than its projection assumed).
    PlanDropped {
        target_step: u64,
        step: u64,
        late: u64,
        reason: String,
    },
    /// A plan made for another generation: not applied.
    PlanRejected {
        generation: u64,
        expected: u64,
        target_step: u64,
    },
    /// Autonomy: generation rewound from step `from` to step `to` and resampled.
    Autonomy {
        from: u64,
        to: u64,
        value: f32,
    },
}
