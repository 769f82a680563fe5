//! Per-layer injection gates: a heat map of the alphas of every plan applied so far (a column
//! per application, a row per layer), and bars for the latest one. An all-dark map means plans
//! are not steering the state at all.

use egui::{Align2, Color32, FontId, Rect, Sense, Stroke, Vec2, pos2, vec2};

use crate::view::TraceView;

#[derive(Default)]
pub struct GatesPanel;

impl GatesPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &TraceView) {
        ui.heading("Injection gates (alpha per layer)");
        let applied: Vec<(u64, &[f32])> = view.applied_alphas().collect();
        let Some(&(last_step, last)) = applied.last() else {
            ui.label("No plan applied yet.");
            return;
        };
        let layers = applied.iter().map(|(_, a)| a.len()).max().unwrap_or(0);
        let max = applied
            .iter()
            .flat_map(|(_, a)| a.iter().copied())
            .fold(1e-6f32, f32::max);
        let text = ui.visuals().text_color();
        let bars_w = 120.0;
        let h = (ui.available_height() - 4.0).clamp(60.0, 220.0);
        let (rect, _) = ui.allocate_exact_size(vec2(ui.available_width(), h), Sense::hover());
        let painter = ui.painter_at(rect);
        let label_w = 26.0;
        let foot = 14.0;
        let map = Rect::from_min_max(
            pos2(rect.left() + label_w, rect.top()),
            pos2(rect.right() - bars_w - 10.0, rect.bottom() - foot),
        );
        let row_h = map.height() / layers.max(1) as f32;
        let col_w = map.width() / applied.len() as f32;
        for (c, (_, alphas)) in applied.iter().enumerate() {
            for (l, &a) in alphas.iter().enumerate() {
                let cell = Rect::from_min_size(
                    pos2(map.left() + c as f32 * col_w, map.top() + l as f32 * row_h),
                    vec2(col_w.max(1.0), row_h),
                );
                painter.rect_filled(cell, 0.0, heat(a / max));
            }
        }
        for l in 0..layers {
            painter.text(
                pos2(rect.left(), map.top() + (l as f32 + 0.5) * row_h),
                Align2::LEFT_CENTER,
                format!("L{l}"),
                FontId::monospace(10.0),
                text,
            );
        }
        painter.text(
            pos2(map.left(), map.bottom() + 2.0),
            Align2::LEFT_TOP,
            format!(
                "{} plans applied, steps {}..{last_step}; max alpha {max:.4}",
                applied.len(),
                applied[0].0
            ),
            FontId::proportional(10.0),
            text,
        );
        // The latest application's alphas as bars, one per layer, on the same scale.
        let bars = Rect::from_min_max(
            pos2(map.right() + 10.0, map.top()),
            pos2(rect.right(), map.bottom()),
        );
        painter.rect_stroke(
            bars,
            0.0,
            Stroke::new(1.0, ui.visuals().weak_text_color()),
            egui::StrokeKind::Inside,
        );
        for (l, &a) in last.iter().enumerate() {
            let top = bars.top() + l as f32 * row_h + row_h * 0.15;
            let w = (a / max).clamp(0.0, 1.0) * (bars.width() - 4.0);
            painter.rect_filled(
                Rect::from_min_size(pos2(bars.left() + 2.0, top), Vec2::new(w, row_h * 0.7)),
                1.0,
                Color32::from_rgb(90, 170, 255),
            );
            painter.text(
                pos2(bars.right() - 2.0, top + row_h * 0.35),
                Align2::RIGHT_CENTER,
                format!("{a:.4}"),
                FontId::monospace(9.0),
                text,
            );
        }
        painter.text(
            pos2(bars.left(), bars.bottom() + 2.0),
            Align2::LEFT_TOP,
            format!("step {last_step}"),
            FontId::proportional(10.0),
            text,
        );
    }
}

/// 0: dark blue, 1: bright yellow.
fn heat(t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    Color32::from_rgb(
        (30.0 + 225.0 * t) as u8,
        (30.0 + 200.0 * t) as u8,
        (90.0 * (1.0 - t) + 40.0 * t) as u8,
    )
}
