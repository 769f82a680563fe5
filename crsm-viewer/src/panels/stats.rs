//! Planner statistics up to the replay's position: simulations per second of search, a histogram
//! of plan latency (snapshot to plan), and what became of the plans.

use crsm::trace::TraceEvent;
use egui_plot::{Bar, BarChart, Plot};

use crate::view::TraceView;

#[derive(Default)]
pub struct StatsPanel;

/// Counts of what happened to plans.
#[derive(Debug, Default, PartialEq)]
pub struct PlanCounts {
    pub snapshots: u64,
    pub posted: u64,
    pub applied: u64,
    pub guided: u64,
    pub decayed: u64,
    pub late: u64,
    pub superseded: u64,
    pub diverged: u64,
    pub rejected: u64,
}

impl PlanCounts {
    pub fn of(view: &TraceView) -> Self {
        let mut c = PlanCounts::default();
        for (_, e) in view.visible() {
            match e {
                TraceEvent::SnapshotSent { .. } => c.snapshots += 1,
                TraceEvent::PlanPosted { .. } => c.posted += 1,
                TraceEvent::PlanApplied { guided, .. } => {
                    c.applied += 1;
                    c.guided += *guided as u64;
                }
                TraceEvent::PlanDecayed { .. } => c.decayed += 1,
                TraceEvent::PlanDropped { reason, .. } => match reason.as_str() {
                    "late" => c.late += 1,
                    "superseded" => c.superseded += 1,
                    _ => c.diverged += 1,
                },
                TraceEvent::PlanRejected { .. } => c.rejected += 1,
                _ => {}
            }
        }
        c
    }
}

impl StatsPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &TraceView) {
        ui.heading("Planner");
        let c = PlanCounts::of(view);
        let (sims, ms) = view.plans().fold((0u64, 0.0f64), |(s, t), p| {
            (s + p.simulations as u64, t + p.latency_ms as f64)
        });
        let rate = if ms > 0.0 {
            sims as f64 / (ms / 1000.0)
        } else {
            0.0
        };
        egui::Grid::new("planner_stats")
            .num_columns(4)
            .show(ui, |ui| {
                ui.label("simulations/s");
                ui.strong(format!("{rate:.0}"));
                ui.label("snapshots");
                ui.strong(c.snapshots.to_string());
                ui.end_row();
                ui.label("plans posted");
                ui.strong(c.posted.to_string());
                ui.label("applied (guided)");
                ui.strong(format!("{} ({})", c.applied, c.guided));
                ui.end_row();
                ui.label("decayed");
                ui.strong(c.decayed.to_string());
                ui.label("late");
                ui.strong(c.late.to_string());
                ui.end_row();
                ui.label("superseded");
                ui.strong(c.superseded.to_string());
                ui.label("diverged");
                ui.strong(c.diverged.to_string());
                ui.end_row();
                ui.label("rejected");
                ui.strong(c.rejected.to_string());
                ui.end_row();
            });
        let latencies: Vec<f32> = view.plans().map(|p| p.latency_ms).collect();
        if latencies.is_empty() {
            return;
        }
        ui.label("Plan latency (ms)");
        let hi = latencies.iter().copied().fold(0.0f32, f32::max).max(1e-3);
        let bins = 12;
        let width = hi / bins as f32;
        let mut counts = vec![0u32; bins];
        for l in &latencies {
            counts[((l / width) as usize).min(bins - 1)] += 1;
        }
        let bars = counts
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                Bar::new((i as f64 + 0.5) * width as f64, n as f64).width(width as f64 * 0.9)
            })
            .collect();
        Plot::new("latency_histogram")
            .height((ui.available_height() - 4.0).max(60.0))
            .allow_scroll(false)
            .show(ui, |plot| plot.bar_chart(BarChart::new("plans", bars)));
    }
}
