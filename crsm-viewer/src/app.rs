//! The app: where the trace comes from (a replay, a live run, or a message saying why neither),
//! the panels laid out over one `TraceView`, frame times, and the `--exit-after-frames` /
//! `--screenshot` exit used by the smoke test and the README's picture.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use egui::vec2;

use crate::frame_times::FrameTimes;
use crate::live::Live;
use crate::panels::{CriticPanel, GatesPanel, SearchTreePanel, StatsPanel, TokenStreamPanel};
use crate::player::Player;
use crate::view::TraceView;

/// Where the events come from.
pub enum Source {
    Replay(Player),
    Live(Live),
    /// Nothing to show but this (a refused trace, a missing file).
    Message(String),
}

/// Every panel, laid out: the token stream and the planner's stats on the left, the search tree
/// in the middle, gates and critic along the bottom.
#[derive(Default)]
pub struct Panels {
    pub tokens: TokenStreamPanel,
    pub tree: SearchTreePanel,
    pub gates: GatesPanel,
    pub critic: CriticPanel,
    pub stats: StatsPanel,
}

impl Panels {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &TraceView) {
        let size = ui.available_size();
        egui::Panel::left("left")
            .resizable(true)
            .default_size(size.x * 0.34)
            .show(ui, |ui| {
                let h = ui.available_height();
                ui.allocate_ui(vec2(ui.available_width(), h * 0.5), |ui| {
                    ui.set_min_height(h * 0.5);
                    self.tokens.ui(ui, view);
                });
                ui.separator();
                self.stats.ui(ui, view);
            });
        egui::Panel::bottom("bottom")
            .resizable(true)
            .default_size(size.y * 0.36)
            .show(ui, |ui| {
                ui.columns(2, |c| {
                    self.gates.ui(&mut c[0], view);
                    self.critic.ui(&mut c[1], view);
                });
            });
        egui::CentralPanel::default().show(ui, |ui| self.tree.ui(ui, view));
    }
}

/// When to leave on our own: after so many frames, with a screenshot first if asked.
#[derive(Default)]
pub struct Exit {
    pub after_frames: Option<u64>,
    pub screenshot: Option<PathBuf>,
    frame: u64,
    requested: bool,
    saved: Arc<AtomicBool>,
}

pub struct ViewerApp {
    pub source: Source,
    pub view: TraceView,
    pub panels: Panels,
    pub frames: FrameTimes,
    /// The frames drawn while a live run was generating: the UI's share beside the model.
    pub live_frames: FrameTimes,
    pub exit: Exit,
}

impl ViewerApp {
    /// A replay of `path`, positioned at the end. A refused trace (another schema version, not a
    /// trace, no file) becomes the window's message.
    pub fn replay(path: &Path) -> Self {
        match crsm::trace::read_trace_file(path) {
            Ok(trace) => Self::with(
                Source::Replay(Player::default()),
                TraceView::from_trace(trace),
            ),
            Err(e) => Self::with(
                Source::Message(format!("cannot replay {}: {e}", path.display())),
                TraceView::default(),
            ),
        }
    }

    pub fn live(live: Live) -> Self {
        Self::with(Source::Live(live), TraceView::default())
    }

    pub fn with(source: Source, view: TraceView) -> Self {
        ViewerApp {
            source,
            view,
            panels: Panels::default(),
            frames: FrameTimes::default(),
            live_frames: FrameTimes::default(),
            exit: Exit::default(),
        }
    }

    /// One frame's UI, without eframe (the tests drive it through kittest).
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let dt = ui.input(|i| i.stable_dt).min(0.1);
        egui::Panel::top("controls").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("crsm viewer");
                if let Some(h) = &self.view.header {
                    ui.label(format!("{} · mode {} · {}", h.model, h.mode, h.settings));
                }
            });
            match &mut self.source {
                Source::Replay(player) => {
                    if player.advance(&mut self.view, dt) {
                        ui.ctx().request_repaint();
                    }
                    player.ui(ui, &mut self.view);
                }
                Source::Live(live) => {
                    live.poll(&mut self.view);
                    live.controls_ui(ui, &mut self.view);
                }
                Source::Message(m) => {
                    ui.colored_label(ui.visuals().error_fg_color, m.as_str());
                }
            }
        });
        self.panels.ui(ui, &self.view);
    }

    fn exit_when_due(&mut self, ctx: &egui::Context) {
        let Some(after) = self.exit.after_frames else {
            return;
        };
        self.exit.frame += 1;
        ctx.request_repaint();
        if self.exit.frame < after {
            return;
        }
        match &self.exit.screenshot {
            Some(path) if !self.exit.requested => {
                self.exit.requested = true;
                let (path, saved, ctx2) = (path.clone(), self.exit.saved.clone(), ctx.clone());
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(
                    egui::ScreenshotCallback::new(move |image| {
                        match save_png(&path, &image) {
                            Ok(()) => eprintln!("screenshot: {}", path.display()),
                            Err(e) => eprintln!("screenshot {}: {e:#}", path.display()),
                        }
                        saved.store(true, Ordering::SeqCst);
                        ctx2.request_repaint();
                    }),
                ));
            }
            // Wait for the screenshot, but not forever.
            Some(_) if !self.exit.saved.load(Ordering::SeqCst) && self.exit.frame < after + 120 => {
            }
            _ => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
        }
    }
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let generating = matches!(&self.source, Source::Live(l) if l.running());
        let start = self.frames.start();
        let live_start = generating.then(|| self.live_frames.start());
        ViewerApp::ui(self, ui);
        self.frames.end(start);
        if let Some(live_start) = live_start {
            self.live_frames.end(live_start);
            // The worker wakes the UI per event; this keeps the frame clock honest between them.
            ui.ctx().request_repaint();
        }
        self.exit_when_due(ui.ctx());
    }

    fn on_exit(&mut self) {
        if let Source::Live(live) = &mut self.source {
            live.stop();
            eprintln!("live: {} ({} events)", live.status, self.view.events.len());
        }
        eprintln!("frame times: {}", self.frames.summary());
        if !self.live_frames.build_ms.is_empty() {
            eprintln!(
                "frame times while generating: {}",
                self.live_frames.summary()
            );
        }
    }
}

/// Writes the window's pixels as an RGBA PNG.
pub fn save_png(path: &Path, image: &egui::ColorImage) -> anyhow::Result<()> {
    let [w, h] = image.size;
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|p| p.to_array()).collect();
    enc.write_header()?.write_image_data(&bytes)?;
    Ok(())
}
