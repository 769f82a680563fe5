//! The token stream: the prompt, then each generated token, with a marker after the step where a
//! plan was applied (on time or decayed), dropped (and why) or where autonomy rewound. Bad trace
//! lines come first, as error rows with their line numbers.

use std::collections::BTreeMap;

use crsm::trace::TraceEvent;
use egui::{Color32, RichText};

use crate::view::TraceView;

#[derive(Default)]
pub struct TokenStreamPanel;

/// One thing that happened to generation at a step.
struct Marker {
    glyph: &'static str,
    colour: Color32,
    detail: String,
}

pub const APPLIED: Color32 = Color32::from_rgb(80, 200, 120);
pub const DECAYED: Color32 = Color32::from_rgb(230, 180, 60);
pub const DROPPED: Color32 = Color32::from_rgb(230, 80, 80);
pub const REWOUND: Color32 = Color32::from_rgb(150, 120, 240);

impl TokenStreamPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &TraceView) {
        ui.heading("Token stream");
        for bad in &view.bad_lines {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("line {}: {}", bad.line, bad.message),
            );
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("+ applied").color(APPLIED).small());
            ui.label(RichText::new("~ decayed").color(DECAYED).small());
            ui.label(
                RichText::new("x dropped (xL late, xS superseded, xD diverged)")
                    .color(DROPPED)
                    .small(),
            );
            ui.label(RichText::new("<< rewound").color(REWOUND).small());
        });
        ui.separator();
        let markers = markers(view);
        egui::ScrollArea::vertical()
            .id_salt("token_stream")
            .stick_to_bottom(true)
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.spacing_mut().item_spacing.x = 0.0;
                    if let Some(h) = &view.header {
                        ui.label(RichText::new(&h.prompt).weak());
                    }
                    for (_, e) in view.visible() {
                        let TraceEvent::Token {
                            step, id, entropy, ..
                        } = e
                        else {
                            continue;
                        };
                        ui.label(RichText::new(view.token_text(*id)).monospace())
                            .on_hover_text(format!(
                                "step {step}, id {id}, entropy {entropy:.2} nats"
                            ));
                        for m in markers.get(step).into_iter().flatten() {
                            ui.label(RichText::new(m.glyph).color(m.colour).small())
                                .on_hover_text(&m.detail);
                        }
                    }
                });
            });
    }
}

/// The markers of each step, from the events shown.
fn markers(view: &TraceView) -> BTreeMap<u64, Vec<Marker>> {
    let mut out: BTreeMap<u64, Vec<Marker>> = BTreeMap::new();
    for (_, e) in view.visible() {
        let (step, marker) = match e {
            TraceEvent::PlanApplied {
                target_step,
                step,
                guided,
                ..
            } => (
                *step,
                Marker {
                    glyph: "+",
                    colour: APPLIED,
                    detail: format!(
                        "plan for step {target_step} applied{}",
                        if *guided { ", guided the token" } else { "" }
                    ),
                },
            ),
            TraceEvent::PlanDecayed {
                target_step,
                step,
                late,
                factor,
                ..
            } => (
                *step,
                Marker {
                    glyph: "~",
                    colour: DECAYED,
                    detail: format!(
                        "plan for step {target_step} applied {late} late, alphas x {factor:.2}"
                    ),
                },
            ),
            TraceEvent::PlanDropped {
                target_step,
                step,
                late,
                reason,
            } => (
                *step,
                Marker {
                    glyph: match reason.as_str() {
                        "late" => "xL",
                        "superseded" => "xS",
                        "diverged" => "xD",
                        _ => "x",
                    },
                    colour: DROPPED,
                    detail: format!("plan for step {target_step} dropped: {reason} ({late} late)"),
                },
            ),
            TraceEvent::Autonomy { from, to, value } => (
                *from,
                Marker {
                    glyph: "<<",
                    colour: REWOUND,
                    detail: format!("rewound from step {from} to {to} (value {value:.2})"),
                },
            ),
            _ => continue,
        };
        out.entry(step).or_default().push(marker);
    }
    out
}
