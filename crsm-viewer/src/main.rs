//! crsm-viewer: the desktop viewer for generation traces (the planner's search tree and per-layer
//! injection gates). The trace format and panels arrive with the planner; for now the window says
//! so and shows the devices the engine sees.

use eframe::egui;

fn main() -> eframe::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([640.0, 400.0]),
        ..Default::default()
    };
    eframe::run_native(
        "crsm viewer",
        options,
        Box::new(|_cc| Ok(Box::new(Viewer::default()))),
    )
}

struct Viewer {
    adapters: Vec<String>,
}

impl Default for Viewer {
    fn default() -> Self {
        Viewer {
            adapters: crsm::backend::WgpuContext::list_adapters(),
        }
    }
}

impl eframe::App for Viewer {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        ui.heading("crsm viewer");
        ui.label(
            "Search-tree and injection-gate panels arrive with the planner (traces as JSON Lines).",
        );
        ui.separator();
        ui.label("wgpu adapters:");
        for a in &self.adapters {
            ui.monospace(a);
        }
    }
}
