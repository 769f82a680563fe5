//! The viewer's panels, one file each, as in egui's demo: a plain struct with `Default` and
//! `ui(&mut self, ui, &TraceView)`. They read the trace view only (no model, no planner).

mod critic;
mod gates;
mod search_tree;
mod stats;
mod token_stream;

pub use critic::CriticPanel;
pub use gates::GatesPanel;
pub use search_tree::SearchTreePanel;
pub use stats::{PlanCounts, StatsPanel};
pub use token_stream::TokenStreamPanel;

use egui::Color32;

/// A value in [lo, hi] as a colour from red (low) through amber to green (high): the one scale
/// the tree and the heat map share.
pub fn value_colour(v: f32, lo: f32, hi: f32) -> Color32 {
    let t = if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let (r, g) = if t < 0.5 {
        (1.0, t * 2.0)
    } else {
        (2.0 - t * 2.0, 1.0)
    };
    Color32::from_rgb((r * 220.0) as u8, (g * 200.0) as u8, 60)
}
