//! Replay controls: play, pause, step one event either way, and a scrubber over the events. The
//! position is the view's `cursor`; every panel redraws from it.

use crate::view::TraceView;

pub struct Player {
    pub playing: bool,
    /// Replay speed, events per second.
    pub speed: f32,
    /// Fractional events owed to the next frame.
    carry: f32,
}

impl Default for Player {
    fn default() -> Self {
        Player {
            playing: false,
            speed: 20.0,
            carry: 0.0,
        }
    }
}

impl Player {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &mut TraceView) {
        let len = view.events.len();
        ui.horizontal(|ui| {
            if ui.button("|<").on_hover_text("to the start").clicked() {
                view.cursor = 0;
            }
            if ui.button("<").on_hover_text("back one event").clicked() {
                view.cursor = view.cursor.saturating_sub(1);
                self.playing = false;
            }
            let label = if self.playing { "Pause" } else { "Play" };
            if ui.button(label).clicked() {
                self.playing = !self.playing;
                if self.playing && view.cursor >= len {
                    view.cursor = 0;
                }
            }
            if ui.button(">").on_hover_text("forward one event").clicked() {
                view.cursor = (view.cursor + 1).min(len);
                self.playing = false;
            }
            if ui.button(">|").on_hover_text("to the end").clicked() {
                view.cursor = len;
            }
            ui.add(
                egui::Slider::new(&mut self.speed, 1.0..=500.0)
                    .logarithmic(true)
                    .text("events/s"),
            );
            ui.label(format!("step {}", view.step()));
        });
        let scrub = egui::Slider::new(&mut view.cursor, 0..=len)
            .text("events")
            .show_value(true);
        ui.spacing_mut().slider_width = (ui.available_width() - 120.0).max(100.0);
        if ui.add(scrub).changed() {
            self.playing = false;
        }
    }

    /// Moves the position on while playing; call once a frame with the frame's seconds.
    pub fn advance(&mut self, view: &mut TraceView, dt: f32) -> bool {
        if !self.playing {
            return false;
        }
        self.carry += self.speed * dt;
        let n = self.carry.floor() as usize;
        self.carry -= n as f32;
        view.cursor = (view.cursor + n).min(view.events.len());
        if view.cursor == view.events.len() {
            self.playing = false;
        }
        true
    }
}
