//! `TraceView`: what every panel reads. The events of one trace (replayed or arriving live), the
//! replay's position, and the token texts known so far. It holds `crsm::trace` types only, so
//! the panels never see the model, the planner or a device.

use std::collections::HashMap;

use crsm::trace::{BadLine, Header, NodeSummary, RootChoice, Trace, TraceEvent};

#[derive(Clone, Debug, Default)]
pub struct TraceView {
    pub header: Option<Header>,
    /// The events after the header, each with its 1-based line number.
    pub events: Vec<(usize, TraceEvent)>,
    pub bad_lines: Vec<BadLine>,
    /// How many events are shown: the replay's position (a live view follows the end).
    pub cursor: usize,
    /// Token texts by id: from the trace's `token` events, and a tokenizer where one is known.
    texts: HashMap<u32, String>,
}

/// A `plan_posted` event's fields, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct PlanRef<'a> {
    pub line: usize,
    pub from_step: u64,
    pub target_step: u64,
    pub latency_ms: f32,
    pub simulations: u32,
    pub value: f32,
    pub confidences: &'a [f32],
    pub chosen: u32,
    pub root_policy: &'a [RootChoice],
    pub nodes: &'a [NodeSummary],
}

impl TraceView {
    /// A replay: every event loaded, the position at the end.
    pub fn from_trace(trace: Trace) -> Self {
        let mut view = TraceView {
            header: Some(trace.header),
            bad_lines: trace.bad_lines,
            ..Default::default()
        };
        for (line, event) in trace.events {
            view.push(line, event);
        }
        view
    }

    /// Adds an event; a view positioned at the end stays at the end (live following).
    pub fn push(&mut self, line: usize, event: TraceEvent) {
        if let TraceEvent::Token { id, text, .. } = &event {
            self.texts.entry(*id).or_insert_with(|| text.clone());
        }
        let at_end = self.cursor == self.events.len();
        self.events.push((line, event));
        if at_end {
            self.cursor = self.events.len();
        }
    }

    pub fn set_text(&mut self, id: u32, text: String) {
        self.texts.insert(id, text);
    }

    /// The events up to the replay's position.
    pub fn visible(&self) -> &[(usize, TraceEvent)] {
        &self.events[..self.cursor.min(self.events.len())]
    }

    /// A token's text for labels: its text, escaped, or `#id` when unknown.
    pub fn token_text(&self, id: u32) -> String {
        match self.texts.get(&id) {
            Some(t) if !t.is_empty() => t.escape_debug().to_string(),
            _ => format!("#{id}"),
        }
    }

    /// The last token step shown (0 before the first token).
    pub fn step(&self) -> u64 {
        self.visible()
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                TraceEvent::Token { step, .. } => Some(*step),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// The plans posted so far, oldest first.
    pub fn plans(&self) -> impl DoubleEndedIterator<Item = PlanRef<'_>> {
        self.visible().iter().filter_map(|(line, e)| match e {
            TraceEvent::PlanPosted {
                from_step,
                target_step,
                latency_ms,
                simulations,
                value,
                confidences,
                chosen,
                root_policy,
                nodes,
                ..
            } => Some(PlanRef {
                line: *line,
                from_step: *from_step,
                target_step: *target_step,
                latency_ms: *latency_ms,
                simulations: *simulations,
                value: *value,
                confidences,
                chosen: *chosen,
                root_policy,
                nodes,
            }),
            _ => None,
        })
    }

    /// The newest plan shown: the one whose tree the search panel draws.
    pub fn current_plan(&self) -> Option<PlanRef<'_>> {
        self.plans().next_back()
    }

    /// Gate alphas applied so far: (step, alphas), on time or decayed.
    pub fn applied_alphas(&self) -> impl Iterator<Item = (u64, &[f32])> {
        self.visible().iter().filter_map(|(_, e)| match e {
            TraceEvent::PlanApplied { step, alphas, .. }
            | TraceEvent::PlanDecayed { step, alphas, .. } => Some((*step, alphas.as_slice())),
            _ => None,
        })
    }
}
