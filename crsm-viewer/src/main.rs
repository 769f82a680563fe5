//! crsm-viewer: watch the planner think. `--replay FILE.jsonl` replays a deliberation trace;
//! `--model DIR` runs generation with deliberation on a worker thread and shows its trace live.

use std::path::PathBuf;

use clap::Parser;
use crsm::DeviceRequest;
use crsm_viewer::ViewerApp;
use crsm_viewer::live::Live;
use eframe::egui;

#[derive(Parser)]
#[command(about = "Watch the planner think: the token stream, the search tree, gates and critic")]
struct Args {
    /// Replay a trace written by `crsm-train generate --trace FILE.jsonl`.
    #[arg(long, conflicts_with = "model")]
    replay: Option<PathBuf>,
    /// Generate live from an assembled CRSM folder (`crsm-train assemble`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The device live generation runs on: auto, cpu, gpu or lavapipe.
    #[arg(long, default_value = "cpu")]
    device: DeviceRequest,
    /// Live mode: the prompt to start with.
    #[arg(long)]
    prompt: Option<String>,
    /// Live mode: how many tokens to generate.
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Live mode: start generating at once.
    #[arg(long)]
    start: bool,
    /// Close the window after this many frames (smoke tests, screenshots).
    #[arg(long)]
    exit_after_frames: Option<u64>,
    /// With --exit-after-frames: save the window as a PNG before closing.
    #[arg(long, requires = "exit_after_frames")]
    screenshot: Option<PathBuf>,
    /// Window size, logical points.
    #[arg(long, num_args = 2, default_values_t = [1400.0, 900.0])]
    size: Vec<f32>,
}

fn main() -> eframe::Result<()> {
    let args = Args::parse();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([args.size[0], args.size[1]]),
        ..Default::default()
    };
    eframe::run_native(
        "crsm viewer",
        options,
        Box::new(move |cc| {
            let mut app = match (&args.replay, &args.model) {
                (Some(path), _) => {
                    let mut app = ViewerApp::replay(path);
                    crsm_viewer::live::add_tree_texts(&mut app.view);
                    app
                }
                (None, Some(dir)) => {
                    let mut live = Live::new(dir.clone(), args.device);
                    if let Some(p) = &args.prompt {
                        live.settings.prompt = p.clone();
                    }
                    if let Some(n) = args.max_new_tokens {
                        live.settings.max_new_tokens = n;
                    }
                    let mut app = ViewerApp::live(live);
                    if args.start
                        && let crsm_viewer::app::Source::Live(l) = &mut app.source
                    {
                        l.start(cc.egui_ctx.clone(), &mut app.view);
                    }
                    app
                }
                (None, None) => ViewerApp::with(
                    crsm_viewer::app::Source::Message(
                        "give --replay FILE.jsonl or --model DIR".into(),
                    ),
                    Default::default(),
                ),
            };
            app.exit.after_frames = args.exit_after_frames;
            app.exit.screenshot = args.screenshot.clone();
            Ok(Box::new(app))
        }),
    )
}
