//! crsm-viewer: the desktop viewer for generation traces (the planner's search tree and per-layer
//! injection gates). It will read traces only, never the engine's devices or tensors; the trace
//! format and panels arrive with the planner, and for now the window says so.

use eframe::egui;

fn main() -> eframe::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([640.0, 400.0]),
        ..Default::default()
    };
    eframe::run_native("crsm viewer", options, Box::new(|_cc| Ok(Box::new(Viewer))))
}

struct Viewer;

impl eframe::App for Viewer {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        ui.heading(concat!("crsm viewer ", env!("CARGO_PKG_VERSION")));
        ui.label(
            "Search-tree and injection-gate panels arrive with the planner (traces as JSON Lines).",
        );
    }
}
