//! The critic over time: per layer, the confidence the planner's critic gave the chosen child of
//! each plan (the value the injection gates read), and the root's value (the critic heads' mean),
//! against the step each plan was for.

use egui_plot::{Legend, Line, Plot};

use crate::view::TraceView;

#[derive(Default)]
pub struct CriticPanel;

impl CriticPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &TraceView) {
        ui.heading("Critic per layer");
        let plans: Vec<_> = view.plans().collect();
        if plans.is_empty() {
            ui.label("No plan yet.");
            return;
        }
        let layers = plans.iter().map(|p| p.confidences.len()).max().unwrap_or(0);
        let h = ((ui.available_height() - 30.0) * 0.6).max(60.0);
        Plot::new("critic_layers")
            .height(h)
            .legend(Legend::default())
            .allow_scroll(false)
            .show(ui, |plot| {
                for l in 0..layers {
                    let points: Vec<[f64; 2]> = plans
                        .iter()
                        .filter_map(|p| {
                            p.confidences
                                .get(l)
                                .map(|&c| [p.target_step as f64, c as f64])
                        })
                        .collect();
                    plot.line(Line::new(format!("layer {l}"), points));
                }
            });
        let points: Vec<[f64; 2]> = plans
            .iter()
            .map(|p| [p.target_step as f64, p.value as f64])
            .collect();
        Plot::new("critic_root")
            .height((ui.available_height() - 4.0).max(40.0))
            .legend(Legend::default())
            .allow_scroll(false)
            .show(ui, |plot| plot.line(Line::new("root value", points)));
    }
}
